"""VeraConfig: PEFT's fields and defaults for VeRA (and the fields PVeRA's config repeats)."""
from dataclasses import dataclass

from ...config import PeftType, TargetModulesConfig, check_number


@dataclass
class SharedProjectionConfig(TargetModulesConfig):
    """The fields VeRA and PVeRA share (PEFT repeats them in each config, with the same defaults).

    r: the shared rank (PEFT's default 256). projection_prng_key: the seed of A and B. save_projection: store A
    and B in the adapter file (tinypeft needs it: it cannot regenerate torch's random stream). d_initial: the
    start value of lambda_d (lambda_b starts at 0, so a fresh adapter is a no-op). init_weights=False keeps
    lambda_b = 1 and lambda_d ~ N(0, 1) (for tests).
    """

    r: int = 256
    projection_prng_key: int = 0
    save_projection: bool = True
    d_initial: float = 0.1
    fan_in_fan_out: bool = False
    bias: str = "none"
    init_weights: bool = True

    def _check_projection_config(self, method):
        """Dropout in [0, 1), PEFT's bias names, and projections that are saved (tinypeft cannot regenerate
        torch's random stream from projection_prng_key)."""
        check_number(self, f"{method}_dropout", 0, 1, high_open=True)
        if self.bias not in ("none", "all", f"{method}_only"):
            raise ValueError(f"{type(self).__name__}(bias={self.bias!r}): use 'none', 'all' or '{method}_only'.")
        if not self.save_projection:
            raise NotImplementedError(
                f"{type(self).__name__}(save_projection=False) is not supported by tinypeft: the shared projections "
                "would have to be regenerated from torch's random stream. Use save_projection=True (PEFT's default).")


@dataclass
class VeraConfig(SharedProjectionConfig):
    """VeRA (Kopiczko et al. 2024): one pair of frozen random matrices A [r, in], B [out, r] shared by every layer,
    and per layer only two trained vectors: y = base(x) + lambda_b * (B (lambda_d * (A x))). Fields: see
    SharedProjectionConfig; vera_dropout applies to x."""

    vera_dropout: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.VERA
        self._check_projection_config("vera")
