"""LoKrConfig: PEFT's fields and defaults for LoKr (low-rank Kronecker product)."""
from dataclasses import dataclass
from typing import Union

from ...config import PeftType
from ..lycoris_utils import LycorisConfig


@dataclass
class LoKrConfig(LycorisConfig, peft_type=PeftType.LOKR):
    """LoKr: delta W = kron(w1, w2) * alpha / r, with out = a*b and in = c*d split by `factorization`.

    w1 [a, c] is kept whole unless decompose_both (then w1_a @ w1_b, rank r); w2 [b, d(, *kernel)] is
    w2_a @ w2_b (rank r) whenever r < max(b, d) / 2, else whole. decompose_factor: the preferred size of the
    first factor (-1: near the square root). use_effective_conv2d: a Tucker core lokr_t2 for conv kernels.
    rank_dropout_scale: rescale the rows kept by rank_dropout. init_weights: True (w1 = 0: a no-op start),
    "lycoris" (w2 = 0 instead), False (all random, for tests). The other fields are LycorisConfig's.
    """

    decompose_both: bool = False
    decompose_factor: int = -1
    rank_dropout_scale: bool = False
    init_weights: Union[bool, str] = True

    def __post_init__(self):
        super().__post_init__()
        if self.init_weights not in (True, False, "lycoris"):
            raise ValueError(f"LoKrConfig(init_weights={self.init_weights!r}): use True, False or 'lycoris'.")
