"""RandLoraConfig: PEFT's fields and defaults for RandLoRA."""
from dataclasses import dataclass

from ...config import PeftType, SharedProjectionConfig


@dataclass
class RandLoraConfig(SharedProjectionConfig, peft_type=PeftType.RANDLORA, r_min=None, pattern_needs_layers=False):
    """RandLoRA: frozen random bases A [r, 1, min] and B [max, n, r], shared by all layers, with n = ceil(min / r)
    bases so the update can reach full rank; each layer trains only randlora_lambda [r, n] and randlora_gamma [n, min],
    scaling the bases, and delta W = (B-bases) (lambda * A * gamma) * randlora_alpha / r.

    sparse / very_sparse: ternary bases (-1, 0, 1) with density 1/3 or 1/sqrt(min). save_projection: the bases are
    stored in the adapter file (tinypeft draws them from its own generator, so it needs them saved; False is refused).
    init_weights: True starts at lambda = 0 (a no-op); False draws lambda ~ N(0, 1) (for tests).
    """

    r: int = 32
    sparse: bool = False
    very_sparse: bool = False
    randlora_dropout: float = 0.0
    randlora_alpha: int = 640
    init_weights: bool = True
