"""RandLoraConfig: PEFT's fields and defaults for RandLoRA."""
from dataclasses import dataclass

from ...config import PeftType, TargetModulesConfig


@dataclass
class RandLoraConfig(TargetModulesConfig, peft_type=PeftType.RANDLORA, r_min=None, pattern_needs_layers=False):
    """RandLoRA: frozen random bases A [r, 1, min] and B [max, n, r], shared by all layers, with n = ceil(min / r)
    bases so the update can reach full rank; each layer trains only randlora_lambda [r, n] and randlora_gamma [n, min],
    scaling the bases, and delta W = (B-bases) (lambda * A * gamma) * randlora_alpha / r.

    sparse / very_sparse: ternary bases (-1, 0, 1) with density 1/3 or 1/sqrt(min). save_projection: the bases are
    stored in the adapter file (tinypeft draws them from its own generator, so it needs them saved; False is refused).
    init_weights: True starts at lambda = 0 (a no-op); False draws lambda ~ N(0, 1) (for tests).
    """

    r: int = 32
    projection_prng_key: int = 0
    save_projection: bool = True
    sparse: bool = False
    very_sparse: bool = False
    randlora_dropout: float = 0.0
    fan_in_fan_out: bool = False
    randlora_alpha: int = 640
    bias: str = "none"
    init_weights: bool = True

    def __post_init__(self):
        super().__post_init__()
        if not self.save_projection:
            raise NotImplementedError("RandLoraConfig(save_projection=False) is not supported by tinypeft: the bases "
                                      "would have to be regenerated from torch's random stream. Use "
                                      "save_projection=True (PEFT's default).")
