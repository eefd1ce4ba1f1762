"""SupertuningConfig: PEFT's fields and defaults for Super-Tuning."""
import warnings
from dataclasses import dataclass
from typing import Optional

from ...config import ModuleTargetsConfig, PeftType


@dataclass
class SupertuningConfig(ModuleTargetsConfig):
    """Super-Tuning: W' = W + S (+ (lora_alpha / r) B A with r set: Supra), S sparse: trained values at the
    (1 - sparsity) share of W's entries of largest magnitude (smallest with select_top=False), chosen once from
    the base weight. save_precomputed_indices: store those positions in the adapter file (else they are chosen
    again at load). lora_alpha defaults to 2 r. init_weights: True starts S (and B) at zero; False draws them.
    """

    sparsity: float = 0.99
    select_top: bool = True
    r: Optional[int] = None
    lora_alpha: Optional[float] = None
    lora_dropout: float = 0.0
    init_weights: bool = True
    save_precomputed_indices: bool = True

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.SUPERTUNING
        if not 0.0 <= self.sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0.0, 1.0), got {self.sparsity}")
        if self.r is not None:
            if not isinstance(self.r, int) or self.r <= 0:
                raise ValueError(f"r must be a positive integer or None, got {self.r!r}")
            if self.lora_alpha is None:
                self.lora_alpha = 2 * self.r
        elif self.lora_alpha is not None:
            raise ValueError("lora_alpha is set but r is None — Supra mode requires an explicit r.")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout must be in [0.0, 1.0), got {self.lora_dropout}")
        if not self.save_precomputed_indices:
            warnings.warn("save_precomputed_indices=False: sparse-support indices will be recomputed from base weight "
                          "magnitudes at load time. This assumes the base model is identical to training time; "
                          "numerical drift can cause topk tie-breaks to differ.")
