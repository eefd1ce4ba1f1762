"""FourierFTConfig: PEFT's fields and defaults for FourierFT."""
from dataclasses import dataclass, field
from typing import Optional, Union

from ...config import PeftConfig, PeftType


@dataclass
class FourierFTConfig(PeftConfig):
    """FourierFT: delta W = Re(ifft2(D)) * scaling, D [out, in] zero but at n_frequency positions drawn once
    (torch.randperm under random_loc_seed), where D holds the trained `fourierft_spectrum` [n_frequency].

    n_frequency_pattern: per-module n_frequency (regex on the path's end). init_weights: False (PEFT's default)
    draws the spectrum N(0, 1), so a new adapter is not a no-op; True starts from zeros.
    """

    n_frequency: int = 1000
    scaling: float = 150.0
    random_loc_seed: Optional[int] = 777
    fan_in_fan_out: bool = False
    target_modules: Optional[Union[list, str]] = None
    exclude_modules: Optional[Union[list, str]] = None
    bias: str = "none"
    modules_to_save: Optional[list] = None
    layers_to_transform: Optional[Union[list, int]] = None
    layers_pattern: Optional[Union[list, str]] = None
    n_frequency_pattern: Optional[dict] = field(default_factory=dict)
    init_weights: bool = False

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.FOURIERFT
        for name in ("target_modules", "exclude_modules"):
            if isinstance(getattr(self, name), list):
                setattr(self, name, set(getattr(self, name)))
        if isinstance(self.target_modules, str) and self.layers_to_transform is not None:
            raise ValueError("`layers_to_transform` cannot be used when `target_modules` is a str.")
        if isinstance(self.target_modules, str) and self.layers_pattern is not None:
            raise ValueError("`layers_pattern` cannot be used when `target_modules` is a str.")
        if self.layers_pattern and self.layers_to_transform is None:
            raise ValueError("When `layers_pattern` is specified, `layers_to_transform` must also be specified. ")
        if self.bias != "none":
            raise NotImplementedError(f"FourierFTConfig(bias={self.bias!r}) is not implemented by tinypeft; use 'none'.")
        if self.random_loc_seed is None or not 0 <= self.random_loc_seed < 2 ** 32:
            raise NotImplementedError(f"FourierFTConfig(random_loc_seed={self.random_loc_seed!r}): tinypeft reproduces "
                                      "torch's generator for seeds in [0, 2**32) only.")
