"""PveraConfig: PEFT's fields and defaults for PVeRA."""
from dataclasses import dataclass
from typing import Optional

from ...config import PeftType, SharedProjectionConfig, check_number


@dataclass
class PveraConfig(SharedProjectionConfig, peft_type=PeftType.PVERA):
    """PVeRA (arXiv 2512.07703): VeRA whose shared A has 2r rows. lambda_d * (A x) [2r] is read as a mean and a
    log-variance (mu, logvar) of r Gaussian codes; training samples mu + eps * exp(logvar / 2), inference uses mu
    (or samples too with sample_at_inference=True), then y = base(x) + lambda_b * (B code).

    r, d_initial, init_weights as VeRA's (VeraConfig). generator_seed seeds the sampling noise (NumPy's generator,
    not torch's: the samples differ from PEFT's).
    """

    r: int = 256
    d_initial: float = 0.1
    init_weights: bool = True
    sample_at_inference: bool = False
    generator_seed: Optional[int] = None
    pvera_dropout: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        check_number(self, "pvera_dropout", 0, 1, high_open=True)
