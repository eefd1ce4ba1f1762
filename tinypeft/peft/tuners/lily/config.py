"""LilyConfig: PEFT's fields and defaults for Lily."""
from dataclasses import dataclass
from typing import Optional, Union

from ...config import PeftType, TargetModulesConfig


@dataclass
class LilyConfig(TargetModulesConfig):
    """Lily: y = base(x) + scaling * (x A^T) B_mix, B_mix = sum_e p_e B_e, p = mean over tokens of
    softmax(router(x A^T)).

    r: the rank of A [r, in] and of each B_e [r, out]. stride_A: that many neighbouring layers (of one target name
    and shape) share one A. num_B (>= 2): the B's, shared by all layers of one target name and shape. scaling: a
    plain multiplier (no alpha / r). init_weights: True starts B at zero (a no-op); False draws it (for tests).
    """

    r: int = 32
    stride_A: int = 1
    num_B: int = 2
    scaling: float = 1.0
    exclude_modules: Optional[Union[list, str]] = None
    init_weights: bool = True

    _r_min = None  # Lily checks r in the layer, with PEFT's message
    _refused_with_regex = ()

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.LILY
        if self.stride_A < 1:
            raise ValueError("`stride_A` must be at least 1.")
        if self.num_B < 2:
            raise ValueError("`num_B` must be at least 2 for the router to be trained.")
