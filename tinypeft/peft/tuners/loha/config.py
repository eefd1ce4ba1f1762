"""LoHaConfig: PEFT's fields and defaults for LoHa (low-rank Hadamard product)."""
from dataclasses import dataclass

from ...config import PeftType
from ..lycoris_utils import LycorisConfig


@dataclass
class LoHaConfig(LycorisConfig, peft_type=PeftType.LOHA):
    """LoHa: delta W = (w1_a @ w1_b) * (w2_a @ w2_b) * alpha / r, an elementwise product of two rank-r products,
    so its rank can reach r^2 with 4 r (in + out) parameters.

    r, alpha: rank and scale (alpha / r). rank_dropout / module_dropout: training-time noise (see lycoris_utils).
    use_effective_conv2d: factor a conv kernel with a Tucker core (hada_t1/hada_t2 [r, r, *kernel]) instead of
    flattening it to [out, in * kernel]. init_weights: True makes hada_w2_b zero (a no-op at start); False draws
    every factor at random (for tests). The fields and their defaults are LycorisConfig's.
    """
