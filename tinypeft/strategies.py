"""Hypothesis strategies for proving gradients: the ones tinypeft's own suite uses (tests/test_gradcheck.py).

Reach them through tinypeft.testing (they need hypothesis: pip install 'tinypeft[testing]'). Each op strategy
draws a pair (fn, inputs) that tinypeft.testing.gradcheck takes as it is, so a new op's backward is proven
over many shapes and values in three lines:

    from hypothesis import given
    from tinypeft.testing import GRADCHECK_SETTINGS, binary, gradcheck

    @GRADCHECK_SETTINGS
    @given(binary(lambda a, b: a * b.exp()))
    def test_my_op(case):
        assert gradcheck(*case)

What they draw:
    dims, shapes, shapes_nd    sizes 1-4; shapes of 0-3 dims (() is a scalar); shapes of 1-3 dims
    arrays(shape, low, high)   float64 values uniform in [low, high]: well conditioned, away from the kinks of
                               abs/relu or the poles of log/1/x when the range says so (e.g. low=0.5)
    broadcast_pair()           two shapes that broadcast: size-1 dims and missing leading dims included
    leaf(data)                 a float64 Tensor that requires grad (gradcheck needs float64)
    unary(fn, ...)             (fn, [x]) for fn(x)
    binary(fn, ...)            (fn, [a, b]) for fn(a, b), a and b of broadcastable shapes
    LORA_FLAGS, lora_linear_inputs(...)
                               every combination of LoRA/DoRA, fan_in_fan_out, a trainable base weight, a bias
                               and dropout, as (fn, inputs) for tinypeft.ops.lora's fused LoRA and DoRA ops
"""
import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from .creation import manual_seed, tensor
from .tensor import Tensor

__all__ = ["GRADCHECK_SETTINGS", "dims", "shapes", "shapes_nd", "arrays", "broadcast_pair", "leaf", "unary", "binary",
           "LORA_FLAGS", "lora_linear_inputs"]

# Fifteen draws an op: a finite-difference gradcheck costs two forwards per input element, so more is slow.
GRADCHECK_SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])

dims = st.integers(1, 4)
shapes = st.lists(dims, min_size=0, max_size=3).map(tuple)
shapes_nd = st.lists(dims, min_size=1, max_size=3).map(tuple)


def leaf(data):
    """A float64 Tensor that requires grad, made from `data` (an array or a nested list)."""
    return tensor(np.asarray(data, dtype=np.float64), requires_grad=True)


@st.composite
def arrays(draw, shape, low=-2.0, high=2.0):
    """A float64 array of `shape`, uniform in [low, high] (drawn from a seed, so it shrinks to a small seed)."""
    seed = draw(st.integers(0, 2**31 - 1))
    return np.random.default_rng(seed).uniform(low, high, size=shape)


@st.composite
def broadcast_pair(draw):
    """Two shapes that broadcast against each other: size-1 dims and missing leading dims included. The
    output has dims of 2-4, so most pairs really broadcast (a size-1 dim or a missing one meets a size > 1);
    a scalar operand comes up as one case among many, not as half of them."""
    out = draw(st.lists(st.integers(2, 4), min_size=1, max_size=3))
    a = tuple(1 if draw(st.integers(0, 2)) == 0 else n for n in out)
    b = tuple(1 if draw(st.integers(0, 2)) == 0 else n for n in out)
    b = b[draw(st.integers(0, len(b))) :]  # drop some leading dims (all of them: a scalar)
    return (a, b) if draw(st.booleans()) else (b, a)


def unary(fn, low=-2.0, high=2.0, shape=shapes):
    """(fn, [x]): x a leaf of a shape drawn from `shape`, values in [low, high]."""

    @st.composite
    def strat(draw):
        return fn, [leaf(draw(arrays(draw(shape), low, high)))]

    return strat()


def binary(fn, low=-2.0, high=2.0, b_low=None, b_high=None):
    """(fn, [a, b]): leaves of broadcastable shapes; b's values in [b_low, b_high] when given (a divisor
    kept away from 0, say), else in [low, high] like a's."""

    @st.composite
    def strat(draw):
        sa, sb = draw(broadcast_pair())
        a = draw(arrays(sa, low, high))
        b = draw(arrays(sb, b_low if b_low is not None else low, b_high if b_high is not None else high))
        return fn, [leaf(a), leaf(b)]

    return strat()


# (use_dora, fan_in_fan_out, base weight trainable, bias, dropout): every combination, enumerated, since a bug
# hides in one corner (a missing transpose only when fan_in_fan_out; a dropout mask only when p > 0)
LORA_FLAGS = [(dora, fifo, w_trainable, bias, dropout) for dora in (False, True) for fifo in (False, True)
              for w_trainable in (False, True) for bias in (False, True) for dropout in (0.0, 0.3)]


@st.composite
def lora_linear_inputs(draw, dora, fan_in_fan_out, w_trainable, bias, dropout):
    """(fn, inputs) for tinypeft.ops.lora's lora_linear (or dora_linear) with these flags; hypothesis draws
    the sizes (W square half the time, where a missing transpose still has the right shape), values and seed."""
    from .ops import lora

    n_in, r = draw(st.integers(2, 4)), draw(st.integers(1, 3))
    n_out = n_in if draw(st.booleans()) else draw(dims)
    lead = tuple(draw(st.lists(dims, min_size=1, max_size=2)))
    w_shape = (n_in, n_out) if fan_in_fan_out else (n_out, n_in)
    x = leaf(draw(arrays(lead + (n_in,))))
    W = leaf(draw(arrays(w_shape))) if w_trainable else tensor(draw(arrays(w_shape)))
    b = leaf(draw(arrays((n_out,)))) if bias else None
    A, B = leaf(draw(arrays((r, n_in)))), leaf(draw(arrays((n_out, r))))
    s, seed = draw(st.sampled_from([0.5, 2.0])), draw(st.integers(0, 1000))
    inputs = [t for t in (x, W, b, A, B) if isinstance(t, Tensor) and t.requires_grad]
    m = norm = None
    if dora:
        m = leaf(draw(arrays((n_out,), 0.5, 2.0)))
        Wd = W.detach().numpy().T if fan_in_fan_out else W.detach().numpy()
        norm = tensor(np.linalg.norm(Wd + s * B.detach().numpy() @ A.detach().numpy(), axis=1))
        inputs.append(m)

    def fn(*_):
        manual_seed(seed)  # the same dropout mask in every forward gradcheck runs
        if dora:
            return lora.dora_linear(x, W, b, A, B, m, norm, s, dropout, training=True, fan_in_fan_out=fan_in_fan_out)
        return lora.lora_linear(x, W, b, A, B, s, dropout, training=True, fan_in_fan_out=fan_in_fan_out)

    return fn, inputs
