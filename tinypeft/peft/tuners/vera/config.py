"""VeraConfig: PEFT's fields and defaults for VeRA."""
from dataclasses import dataclass

from ...config import PeftType, SharedProjectionConfig, check_number


@dataclass
class VeraConfig(SharedProjectionConfig, peft_type=PeftType.VERA):
    """VeRA (Kopiczko et al. 2024): one pair of frozen random matrices A [r, in], B [out, r] shared by every layer,
    and per layer only two trained vectors: y = base(x) + lambda_b * (B (lambda_d * (A x))).

    r: the shared rank (PEFT's default 256). projection_prng_key: the seed of A and B. save_projection: store A
    and B in the adapter file (tinypeft needs it: it cannot regenerate torch's random stream). d_initial: the
    start value of lambda_d (lambda_b starts at 0, so a fresh adapter is a no-op). init_weights=False keeps
    lambda_b = 1 and lambda_d ~ N(0, 1) (for tests).
    """

    r: int = 256
    vera_dropout: float = 0.0
    d_initial: float = 0.1
    init_weights: bool = True

    def __post_init__(self):
        super().__post_init__()
        check_number(self, "vera_dropout", 0, 1, high_open=True)
        if self.bias not in ("none", "all", "vera_only"):
            raise ValueError(f"VeraConfig(bias={self.bias!r}): use 'none', 'all' or 'vera_only'.")
