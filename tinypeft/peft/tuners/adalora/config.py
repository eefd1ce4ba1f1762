"""AdaLoraConfig: PEFT's fields and defaults for AdaLoRA (LoraConfig's fields plus the budget schedule)."""
import warnings
from dataclasses import dataclass
from typing import Optional

from ...config import PeftType
from ..lora.config import LoraConfig


@dataclass
class AdaLoraConfig(LoraConfig):
    """AdaLoRA: LoRA in SVD form, delta W = B diag(E) A * lora_alpha / ranknum, whose singular values E are pruned
    during training until `target_r` per layer (on average) remain out of `init_r`.

    Budget schedule (RankAllocator): steps <= tinit keep all init_r ranks; then the total budget falls cubically
    to target_r * n_layers by step total_step - tfinal, masking every deltaT steps the triplets (A row, E, B column)
    of lowest importance; the last tfinal steps keep the final mask. Importance is |p * grad| smoothed by EMAs with
    beta1 (sensitivity) and beta2 (uncertainty). orth_reg_weight: weight of sum ||A A^T - I|| + ||B^T B - I|| (mean
    over matrices) added to the model's loss. rank_pattern: the kept ranks per layer, written when training ends.
    r is not used (init_r is the starting rank).
    """

    target_r: int = 8
    init_r: int = 12
    tinit: int = 0
    tfinal: int = 0
    deltaT: int = 1
    beta1: float = 0.85
    beta2: float = 0.85
    orth_reg_weight: float = 0.5
    total_step: Optional[int] = None
    rank_pattern: Optional[dict] = None

    def __post_init__(self):
        rank_pattern = self.rank_pattern
        self.rank_pattern = None  # LoraConfig's checks expect its own (int) patterns; AdaLoRA's are masks
        super().__post_init__()
        self.rank_pattern = rank_pattern
        self.peft_type = PeftType.ADALORA
        if self.use_dora:
            raise ValueError(f"{self.peft_type} does not support DoRA.")
        if self.init_lora_weights not in (True, False):
            raise NotImplementedError(f"AdaLoraConfig(init_lora_weights={self.init_lora_weights!r}) is not supported "
                                      "by tinypeft; use True or False.")
        if self.lora_bias or self.use_rslora or self.alpha_pattern:
            raise NotImplementedError("AdaLoraConfig: lora_bias, use_rslora and alpha_pattern are not supported by "
                                      "tinypeft's AdaLoRA (PEFT's AdaLoRA layers ignore them).")
        if self.r != 8:
            warnings.warn("Note that `r` is not used in AdaLora and will be ignored."
                          "If you intended to set the initial rank, use `init_r` instead.")
        if self.total_step is None or self.total_step <= 0:
            raise ValueError("AdaLoRA does not work when `total_step` is None, supply a value > 0.")
        if self.orth_reg_weight < 0:
            raise ValueError(f"`orth_reg_weight` should be greater than or equal to 0, but the value passed is "
                             f"{self.orth_reg_weight}")
        if self.tinit >= (self.total_step - self.tfinal):
            raise ValueError("The supplied schedule values don't allow for a budgeting phase. Decrease `tfinal`/`tinit` "
                             "or increase `total_step`.")
        if not (0 < self.beta1 < 1 and 0 < self.beta2 < 1):
            raise ValueError(f"AdaLoraConfig: beta1 ({self.beta1}) and beta2 ({self.beta2}) must be in (0, 1).")
