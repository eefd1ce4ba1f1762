"""Inverted dropout: zero each element with probability p and scale the survivors by 1/(1-p), so the
expected activation is unchanged and evaluation needs no rescaling.

The mask comes from tinypeft's one generator (creation.generator()), so `manual_seed` makes a run
reproducible; on the GPU it is drawn on the CPU and moved, so a seed gives the same mask on both devices.
"""
import numpy as np

from .. import backend
from ..autograd import Function
from ..creation import generator


def keep_mask(shape, p, like):
    """A boolean mask of `shape`, True with probability 1 - p, on the same device as `like`."""
    keep = generator().random(shape, dtype=np.float32) >= p
    return keep if isinstance(like, np.ndarray) else backend.to_device(keep, "cuda")


class Dropout(Function):
    name = "dropout"

    @staticmethod
    def forward(ctx, x, *, p):
        ctx.keep = keep_mask(x.shape, p, x)  # bool: a quarter of the memory of a float mask
        ctx.scale = 1.0 / (1.0 - p)
        out = x * ctx.keep
        out *= x.dtype.type(ctx.scale)
        return out

    @staticmethod
    def backward(ctx, g):
        # y = x * keep / (1 - p)  =>  dx = g * keep / (1 - p)
        dx = g * ctx.keep
        dx *= g.dtype.type(ctx.scale)
        return dx


def dropout(input, p=0.5, training=True, inplace=False):
    """torch.nn.functional.dropout. Off (p = 0 or not training) it returns the input itself; p = 1 zeroes all.

    `inplace` is accepted for torch's signature; the result is always a new array (autograd needs the input)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    return Dropout.apply(input, p=p)
