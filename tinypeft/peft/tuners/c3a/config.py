"""C3AConfig: PEFT's fields and defaults for C3A."""
from dataclasses import dataclass, field
from typing import Optional, Union

from ...config import PeftType, TargetModulesConfig


@dataclass
class C3AConfig(TargetModulesConfig, peft_type=PeftType.C3A, r_min=None, pattern_needs_layers=False,
                refused_with_regex=("layers_to_transform", "layers_pattern")):
    """C3A: delta W is block-circulant, [out/b, in/b] blocks of b x b circulant matrices, each set by one trained
    kernel row c3a_kernel[m, n] [b]; applied as x delta W^T / in_features (a circular correlation per block).

    block_size b (must divide in and out; block_size_pattern per module). init_weights: "xavier_uniform" (PEFT's
    default; so is False), "kaiming_uniform", "gaussian" N(0, 1), or True for zeros (a no-op).
    """

    block_size: int = 256
    bias: str = "none"
    block_size_pattern: Optional[dict] = field(default_factory=dict)
    init_weights: Optional[Union[bool, str]] = "xavier_uniform"

    def __post_init__(self):
        super().__post_init__()
        if self.init_weights not in (True, False, "gaussian", "kaiming_uniform", "xavier_uniform"):
            raise ValueError(f"Unknown init_weights: {self.init_weights}")
