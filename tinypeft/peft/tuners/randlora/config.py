"""RandLoraConfig: PEFT's fields and defaults for RandLoRA."""
from dataclasses import dataclass
from typing import Optional, Union

from ...config import PeftConfig, PeftType


@dataclass
class RandLoraConfig(PeftConfig):
    """RandLoRA: frozen random bases A [r, 1, min] and B [max, n, r], shared by all layers, with n = ceil(min / r)
    bases so the update can reach full rank; each layer trains only randlora_lambda [r, n] and randlora_gamma [n, min],
    scaling the bases, and delta W = (B-bases) (lambda * A * gamma) * randlora_alpha / r.

    sparse / very_sparse: ternary bases (-1, 0, 1) with density 1/3 or 1/sqrt(min). save_projection: the bases are
    stored in the adapter file (tinypeft draws them from its own generator, so it needs them saved; False is refused).
    init_weights: True starts at lambda = 0 (a no-op); False draws lambda ~ N(0, 1) (for tests).
    """

    r: int = 32
    target_modules: Optional[Union[list, str]] = None
    projection_prng_key: int = 0
    save_projection: bool = True
    sparse: bool = False
    very_sparse: bool = False
    randlora_dropout: float = 0.0
    fan_in_fan_out: bool = False
    randlora_alpha: int = 640
    bias: str = "none"
    modules_to_save: Optional[list] = None
    init_weights: bool = True
    layers_to_transform: Optional[Union[list, int]] = None
    layers_pattern: Optional[str] = None

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.RANDLORA
        if isinstance(self.target_modules, list):
            self.target_modules = set(self.target_modules)
        if not self.save_projection:
            raise NotImplementedError("RandLoraConfig(save_projection=False) is not supported by tinypeft: the bases "
                                      "would have to be regenerated from torch's random stream. Use "
                                      "save_projection=True (PEFT's default).")
        if self.bias != "none":
            raise NotImplementedError(f"RandLoraConfig(bias={self.bias!r}) is not implemented by tinypeft; use 'none'.")
