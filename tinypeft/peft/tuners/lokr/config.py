"""LoKrConfig: PEFT's fields and defaults for LoKr (low-rank Kronecker product)."""
from dataclasses import dataclass
from typing import Optional, Union

from ...config import PeftType
from ..lycoris_utils import LycorisConfig


@dataclass
class LoKrConfig(LycorisConfig):
    """LoKr: delta W = kron(w1, w2) * alpha / r, with out = a*b and in = c*d split by `factorization`.

    w1 [a, c] is kept whole unless decompose_both (then w1_a @ w1_b, rank r); w2 [b, d(, *kernel)] is
    w2_a @ w2_b (rank r) whenever r < max(b, d) / 2, else whole. decompose_factor: the preferred size of the
    first factor (-1: near the square root). use_effective_conv2d: a Tucker core lokr_t2 for conv kernels.
    rank_dropout_scale: rescale the rows kept by rank_dropout. init_weights: True (w1 = 0: a no-op start),
    "lycoris" (w2 = 0 instead), False (all random, for tests).
    """

    r: int = 8
    alpha: int = 8
    rank_dropout: float = 0.0
    module_dropout: float = 0.0
    use_effective_conv2d: bool = False
    decompose_both: bool = False
    decompose_factor: int = -1
    rank_dropout_scale: bool = False
    target_modules: Optional[Union[list, str]] = None
    exclude_modules: Optional[Union[list, str]] = None
    init_weights: Union[bool, str] = True
    layers_to_transform: Optional[Union[list, int]] = None
    layers_pattern: Optional[Union[list, str]] = None
    modules_to_save: Optional[list] = None

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.LOKR
        if isinstance(self.target_modules, list):
            self.target_modules = set(self.target_modules)
        if isinstance(self.exclude_modules, list):
            self.exclude_modules = set(self.exclude_modules)
        if isinstance(self.layers_to_transform, int):
            self.layers_to_transform = [self.layers_to_transform]
        if self.layers_pattern and self.layers_to_transform is None:
            raise ValueError("When `layers_pattern` is specified, `layers_to_transform` must also be specified. ")
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r <= 0:
            raise ValueError(f"LoKrConfig(r={self.r!r}): r must be a positive integer.")
        if self.init_weights not in (True, False, "lycoris"):
            raise ValueError(f"LoKrConfig(init_weights={self.init_weights!r}): use True, False or 'lycoris'.")
        for name in ("rank_dropout", "module_dropout"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"LoKrConfig({name}={getattr(self, name)!r}) must be in [0, 1].")
