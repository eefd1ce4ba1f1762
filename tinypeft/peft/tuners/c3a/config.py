"""C3AConfig: PEFT's fields and defaults for C3A."""
from dataclasses import dataclass, field
from typing import Optional, Union

from ...config import PeftConfig, PeftType


@dataclass
class C3AConfig(PeftConfig):
    """C3A: delta W is block-circulant, [out/b, in/b] blocks of b x b circulant matrices, each set by one trained
    kernel row c3a_kernel[m, n] [b]; applied as x delta W^T / in_features (a circular correlation per block).

    block_size b (must divide in and out; block_size_pattern per module). init_weights: "xavier_uniform" (PEFT's
    default; so is False), "kaiming_uniform", "gaussian" N(0, 1), or True for zeros (a no-op).
    """

    block_size: int = 256
    target_modules: Optional[Union[list, str]] = None
    bias: str = "none"
    modules_to_save: Optional[list] = None
    layers_to_transform: Optional[Union[list, int]] = None
    layers_pattern: Optional[Union[list, str]] = None
    block_size_pattern: Optional[dict] = field(default_factory=dict)
    init_weights: Optional[Union[bool, str]] = "xavier_uniform"

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.C3A
        if isinstance(self.target_modules, list):
            self.target_modules = set(self.target_modules)
        if isinstance(self.target_modules, str) and self.layers_to_transform is not None:
            raise ValueError("`layers_to_transform` cannot be used when `target_modules` is a str.")
        if isinstance(self.target_modules, str) and self.layers_pattern is not None:
            raise ValueError("`layers_pattern` cannot be used when `target_modules` is a str.")
        if self.bias != "none":
            raise NotImplementedError(f"C3AConfig(bias={self.bias!r}) is not implemented by tinypeft; use 'none'.")
        if self.init_weights not in (True, False, "gaussian", "kaiming_uniform", "xavier_uniform"):
            raise ValueError(f"Unknown init_weights: {self.init_weights}")
