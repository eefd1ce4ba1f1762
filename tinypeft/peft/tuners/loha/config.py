"""LoHaConfig: PEFT's fields and defaults for LoHa (low-rank Hadamard product)."""
from dataclasses import dataclass
from typing import Optional, Union

from ...config import PeftType
from ..lycoris_utils import LycorisConfig


@dataclass
class LoHaConfig(LycorisConfig):
    """LoHa: delta W = (w1_a @ w1_b) * (w2_a @ w2_b) * alpha / r, an elementwise product of two rank-r products,
    so its rank can reach r^2 with 4 r (in + out) parameters.

    r, alpha: rank and scale (alpha / r). rank_dropout / module_dropout: training-time noise (see lycoris_utils).
    use_effective_conv2d: factor a conv kernel with a Tucker core (hada_t1/hada_t2 [r, r, *kernel]) instead of
    flattening it to [out, in * kernel]. init_weights: True makes hada_w2_b zero (a no-op at start); False draws
    every factor at random (for tests).
    """

    r: int = 8
    alpha: int = 8
    rank_dropout: float = 0.0
    module_dropout: float = 0.0
    use_effective_conv2d: bool = False
    target_modules: Optional[Union[list, str]] = None
    exclude_modules: Optional[Union[list, str]] = None
    init_weights: bool = True
    layers_to_transform: Optional[Union[list, int]] = None
    layers_pattern: Optional[Union[list, str]] = None
    modules_to_save: Optional[list] = None

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.LOHA
        if isinstance(self.target_modules, list):
            self.target_modules = set(self.target_modules)
        if isinstance(self.exclude_modules, list):
            self.exclude_modules = set(self.exclude_modules)
        if isinstance(self.layers_to_transform, int):
            self.layers_to_transform = [self.layers_to_transform]
        if self.layers_pattern and self.layers_to_transform is None:
            raise ValueError("When `layers_pattern` is specified, `layers_to_transform` must also be specified. ")
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r <= 0:
            raise ValueError(f"LoHaConfig(r={self.r!r}): r must be a positive integer.")
        for name in ("rank_dropout", "module_dropout"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"LoHaConfig({name}={getattr(self, name)!r}) must be in [0, 1].")
