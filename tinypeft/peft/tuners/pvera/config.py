"""PveraConfig: PEFT's fields and defaults for PVeRA."""
from dataclasses import dataclass
from typing import Optional

from ...config import PeftType
from ..vera.config import SharedProjectionConfig


@dataclass
class PveraConfig(SharedProjectionConfig):
    """PVeRA (arXiv 2512.07703): VeRA whose shared A has 2r rows. lambda_d * (A x) [2r] is read as a mean and a
    log-variance (mu, logvar) of r Gaussian codes; training samples mu + eps * exp(logvar / 2), inference uses mu
    (or samples too with sample_at_inference=True), then y = base(x) + lambda_b * (B code).

    The shared fields: see SharedProjectionConfig (VeRA's). generator_seed: seeds the sampling noise (NumPy's
    generator, not torch's: the samples differ from PEFT's).
    """

    pvera_dropout: float = 0.0
    sample_at_inference: bool = False
    generator_seed: Optional[int] = None

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.PVERA
        self._check_projection_config("pvera")
