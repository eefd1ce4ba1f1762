"""GraloraConfig: PEFT's fields and defaults for GraLoRA."""
from dataclasses import dataclass

from ...config import LinearTargetConfig, PeftType


@dataclass
class GraloraConfig(LinearTargetConfig, peft_type=PeftType.GRALORA, r_min=None, pattern_needs_layers=False):
    """GraLoRA: the weight is cut into gralora_k x gralora_k blocks and block (j, n) gets its own rank-(r / k)
    update B_j,n A_n,j, so the whole update can reach rank r k with LoRA's parameter count (r (in + out)).
    hybrid_r adds a plain LoRA of that rank beside it; the scale is alpha / (r + hybrid_r).
    init_weights: True (A Kaiming-uniform, B = 0: a no-op); False (both Kaiming-uniform, for tests).
    """

    r: int = 32
    hybrid_r: int = 0
    alpha: int = 64
    gralora_dropout: float = 0.0
    gralora_k: int = 2
    init_weights: bool = True

    def __post_init__(self):
        super().__post_init__()
        if self.gralora_k <= 0:
            raise ValueError(f"`gralora_k` should be a positive integer value but the value passed is {self.gralora_k}")
        if self.r % self.gralora_k != 0:
            raise ValueError(f"r should be divisible by gralora_k, but got {self.r} and {self.gralora_k}")
