"""FourierFTConfig: PEFT's fields and defaults for FourierFT."""
from dataclasses import dataclass, field
from typing import Optional, Union

from ...config import LinearTargetConfig, PeftType


@dataclass
class FourierFTConfig(LinearTargetConfig, peft_type=PeftType.FOURIERFT, r_min=None,
                      refused_with_regex=("layers_to_transform", "layers_pattern")):
    """FourierFT: delta W = Re(ifft2(D)) * scaling, D [out, in] zero but at n_frequency positions drawn once
    (torch.randperm under random_loc_seed), where D holds the trained `fourierft_spectrum` [n_frequency].

    n_frequency_pattern: per-module n_frequency (regex on the path's end). init_weights: False (PEFT's default)
    draws the spectrum N(0, 1), so a new adapter is not a no-op; True starts from zeros.
    """

    n_frequency: int = 1000
    scaling: float = 150.0
    random_loc_seed: Optional[int] = 777
    exclude_modules: Optional[Union[list, str]] = None
    n_frequency_pattern: Optional[dict] = field(default_factory=dict)
    init_weights: bool = False

    def __post_init__(self):
        super().__post_init__()
        if self.random_loc_seed is None or not 0 <= self.random_loc_seed < 2 ** 32:
            raise NotImplementedError(f"FourierFTConfig(random_loc_seed={self.random_loc_seed!r}): tinypeft reproduces "
                                      "torch's generator for seeds in [0, 2**32) only.")
