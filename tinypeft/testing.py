"""Proving gradients: compare the analytic backward with central finite differences, in float64.

With a random output cotangent c, the scalar L = sum(f(x) * c) has dL/dx = backward(c) (what the op's
backward computes) and, numerically, dL/dx_i ~ (L(x + h e_i) - L(x - h e_i)) / 2h, with error O(h^2).

Beside gradcheck, the hypothesis strategies the suite proves every op with (tinypeft/strategies.py: shapes,
broadcastable pairs, well-conditioned values, unary/binary op inputs, the LoRA/DoRA flag combinations) are
importable from here once hypothesis is installed (pip install 'tinypeft[testing]'):

    from hypothesis import given
    from tinypeft.testing import GRADCHECK_SETTINGS, gradcheck, unary

    @GRADCHECK_SETTINGS
    @given(unary(lambda x: x.tanh() * x))
    def test_my_op(case):
        assert gradcheck(*case)
"""
import numpy as np

from .autograd import no_grad
from .backend import to_device
from .tensor import Tensor


_STRATEGIES = ("GRADCHECK_SETTINGS", "dims", "shapes", "shapes_nd", "arrays", "broadcast_pair", "leaf", "unary",
               "binary", "LORA_FLAGS", "lora_linear_inputs")


def __getattr__(name):
    """The strategies, imported on first use, so that gradcheck works without hypothesis installed."""
    if name not in _STRATEGIES:
        raise AttributeError(f"module 'tinypeft.testing' has no attribute {name!r}")
    try:
        from . import strategies
    except ImportError as e:
        raise ImportError(f"tinypeft.testing.{name} needs hypothesis ({e}); install it: "
                          "pip install 'tinypeft[testing]'") from None
    return getattr(strategies, name)


def __dir__():
    return sorted(list(globals()) + list(_STRATEGIES))


def _as_outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def central_difference(f, a, eps=1e-6):
    """d f() / d a for a scalar f() that reads the array `a`: each element nudged by +-eps in place (then
    restored), (f(a + eps e_i) - f(a - eps e_i)) / 2 eps. Returns a float64 array of a's shape."""
    grad = np.zeros(a.shape)
    for i in np.ndindex(a.shape):
        old = a[i].copy()  # not a[i]: on CuPy that is a view, which the nudge below would move too
        a[i] = old + eps
        up = f()
        a[i] = old - eps
        down = f()
        a[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, raise_exception=True):
    """Check d sum(fn(*inputs) * c)/d input against central differences for every input that requires grad.

    `inputs` are Tensors (float64 for a meaningful check; others are passed through unchanged).
    Returns True, or raises AssertionError naming the input and the worst element.
    """
    rng = np.random.default_rng(seed)
    for t in inputs:
        if isinstance(t, Tensor) and t.requires_grad and t.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 inputs for precision; got {t.dtype}. Use .double().")
    outs = _as_outputs(fn(*inputs))
    cots = [rng.standard_normal(o.shape) for o in outs]

    def loss():
        with no_grad():
            vals = _as_outputs(fn(*inputs))
        return sum(float((to_device(v.data, "cpu").astype(np.float64) * c).sum()) for v, c in zip(vals, cots))

    for t in inputs:
        if isinstance(t, Tensor):
            t.grad = None
    total = None
    for o, c in zip(outs, cots):
        if o.requires_grad:
            term = (o * Tensor(c, dtype=o.dtype)).sum()
            total = term if total is None else total + term
    if total is None:
        raise ValueError("gradcheck: no output requires grad; nothing to check.")
    total.backward()

    for k, t in enumerate(inputs):
        if not (isinstance(t, Tensor) and t.requires_grad):
            continue
        analytic = np.zeros(t.shape) if t.grad is None else to_device(t.grad.data, "cpu").astype(np.float64)
        numeric = central_difference(loss, t.data, eps)
        bad = ~np.isclose(analytic, numeric, atol=atol, rtol=rtol)
        if bad.any():
            i = np.unravel_index(np.argmax(np.abs(analytic - numeric) * bad), t.shape)
            msg = (
                f"gradcheck failed for input {k} (shape {t.shape}) at {i}: "
                f"analytic {analytic[i]:.8g} vs numeric {numeric[i]:.8g} "
                f"({int(bad.sum())} of {bad.size} elements off)"
            )
            if raise_exception:
                raise AssertionError(msg)
            return False
    return True


# Logits of the fixture models against transformers' stored outputs: measured relative errors (max |diff| /
# max |reference|) are 1.7e-7 to 6.9e-7, float32 rounding in a different summation order (C or NumPy matmul).
LOGITS_RTOL = 2e-6


def assert_close_to_scale(actual, desired, rtol=LOGITS_RTOL, err_msg=""):
    """max |actual - desired| <= rtol * max |desired|: an error measured against the tensor's own scale, so
    one tolerance means the same for logits of size 0.5 and of size 50."""
    actual, desired = np.asarray(actual, dtype=np.float64), np.asarray(desired, dtype=np.float64)
    assert actual.shape == desired.shape, f"{err_msg} shapes differ: {actual.shape} vs {desired.shape}"
    scale = float(np.abs(desired).max()) if desired.size else 0.0
    error = float(np.abs(actual - desired).max()) if desired.size else 0.0
    assert error <= rtol * scale, f"{err_msg} max error {error:.3g} is {error / max(scale, 1e-300):.3g} of the " \
                                  f"scale {scale:.3g}; allowed {rtol:.1g}"
