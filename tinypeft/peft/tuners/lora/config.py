"""LoraConfig: PEFT's 41 fields with PEFT's defaults; the ones tinypeft implements are documented here."""
import re
from dataclasses import dataclass, field
from typing import Optional, Union

from ...config import PeftConfig, PeftType, check_number, unsupported


@dataclass
class LoraConfig(PeftConfig):
    """Low-rank adaptation: W x + (lora_alpha / r) * B A x, with A [r, in] and B [out, r] trained, W frozen.

    r: rank of the update. lora_alpha: its scale (the update is multiplied by lora_alpha / r, or by
    lora_alpha / sqrt(r) with use_rslora), so changing r does not change the learning-rate scale.
    target_modules: module names (suffix match), a regex (full match), or "all-linear"; None takes the
    model type's default (q/v projections). init_lora_weights: True (A Kaiming-uniform, B = 0: the
    adapter starts as a no-op), "gaussian" (A ~ N(0, 1/r)), or False (both random, for tests).
    """

    r: int = 8
    target_modules: Optional[Union[list, str]] = None
    exclude_modules: Optional[Union[list, str]] = None
    lora_alpha: int = 8
    lora_dropout: float = 0.0
    fan_in_fan_out: bool = False
    bias: str = "none"
    use_rslora: bool = False
    modules_to_save: Optional[list] = None
    init_lora_weights: Union[bool, str] = True
    layers_to_transform: Optional[Union[list, int]] = None
    layers_pattern: Optional[Union[list, str]] = None
    rank_pattern: Optional[dict] = field(default_factory=dict)
    alpha_pattern: Optional[dict] = field(default_factory=dict)
    megatron_config: Optional[dict] = None
    megatron_core: Optional[str] = "megatron.core"
    trainable_token_indices: Optional[Union[list, dict]] = None
    loftq_config: Union[dict] = field(default_factory=dict)
    eva_config: Optional[dict] = None
    corda_config: Optional[dict] = None
    lora_ga_config: Optional[dict] = None
    use_dora: bool = False
    velora_config: Optional[dict] = None
    alora_invocation_tokens: Optional[list] = None
    use_qalora: bool = False
    qalora_group_size: int = 16
    monteclora_config: Optional[dict] = None
    layer_replication: Optional[list] = None
    lora_bias: bool = False
    target_parameters: Optional[list] = None
    use_bdlora: Optional[dict] = None
    arrow_config: Optional[dict] = None
    kasa_config: Optional[dict] = None
    ensure_weight_tying: bool = False

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.LORA
        if isinstance(self.target_modules, (list, tuple)):
            self.target_modules = set(self.target_modules)
        if isinstance(self.exclude_modules, (list, tuple)):
            self.exclude_modules = set(self.exclude_modules)
        if self.bias not in ("none", "all", "lora_only"):
            raise ValueError(f"LoraConfig(bias={self.bias!r}): use 'none', 'all' or 'lora_only'.")
        if self.init_lora_weights not in (True, False, "gaussian", "pissa", "olora") and not (
                isinstance(self.init_lora_weights, str) and re.fullmatch(r"pissa_niter_\d+", self.init_lora_weights)):
            raise NotImplementedError(
                f"LoraConfig(init_lora_weights={self.init_lora_weights!r}) is not supported by tinypeft; "
                "use True, False, 'gaussian', 'pissa', 'pissa_niter_[number of iters]' or 'olora'."
            )
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r <= 0:
            raise ValueError(f"LoraConfig(r={self.r!r}): r must be a positive integer.")
        if self.use_dora and self.lora_bias:
            raise ValueError("The argument lora_bias=True is not supported for DoRA, please pass use_dora=False")
        check_number(self, "lora_alpha")
        check_number(self, "lora_dropout", 0, 1, high_open=True)
        if isinstance(self.layers_to_transform, int):
            self.layers_to_transform = [self.layers_to_transform]
        if self.layers_pattern and not self.layers_to_transform:
            raise ValueError("LoraConfig: layers_pattern only works together with layers_to_transform.")
        if isinstance(self.target_modules, str) and self.layers_to_transform:
            raise ValueError("LoraConfig: layers_to_transform cannot be used when target_modules is a str.")
        unsupported(
            self, megatron_config=None, trainable_token_indices=None, loftq_config={}, eva_config=None,
            corda_config=None, lora_ga_config=None, velora_config=None, alora_invocation_tokens=None,
            use_qalora=False, monteclora_config=None, layer_replication=None,
            use_bdlora=None, arrow_config=None, kasa_config=None, ensure_weight_tying=False,
        )
