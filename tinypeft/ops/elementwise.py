"""Elementwise functions: exp, log, sqrt, tanh, sigmoid, relu, gelu (exact and tanh), silu.

Each backward multiplies the incoming gradient by f'(x), written in terms of whatever the forward
already computed (e.g. sigmoid' = s(1-s)), so nothing is evaluated twice.
"""
import math

import numpy as np

from .. import backend
from ..autograd import Function
from ..backend import cmatmul, fused

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_TANH_C = 0.044715  # the cubic term of GPT-2's tanh approximation (Hendrycks & Gimpel 2016)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_math_erf = np.frompyfunc(math.erf, 1, 1)


def erf(x):
    """Exact erf on any array: libm through the C extension, CuPy's on the GPU, else math.erf per element."""
    if backend.xp_of(x) is not np:
        import cupyx.scipy.special

        return cupyx.scipy.special.erf(x)
    x = np.asarray(x)
    if not cmatmul.available():
        return np.asarray(_math_erf(x), dtype=x.dtype)
    if x.dtype not in (np.float32, np.float64):
        return cmatmul.erf(x)  # which casts other dtypes to float64
    # libm's erf is scalar, one element at a time: a big array is shared among the matmul threads
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    backend.parallel_elementwise(lambda xs, ys: cmatmul.erf(xs, out=ys), x, y)
    return y


class Exp(Function):
    name = "exp"

    @staticmethod
    def forward(ctx, x):
        out = backend.xp_of(x).exp(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        # d e^x = e^x
        (out,) = ctx.saved_tensors
        return g * out


class Log(Function):
    name = "log"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.xp_of(x).log(x)

    @staticmethod
    def backward(ctx, g):
        # d log x = 1/x
        (x,) = ctx.saved_tensors
        return g / x


class Sqrt(Function):
    name = "sqrt"

    @staticmethod
    def forward(ctx, x):
        out = backend.xp_of(x).sqrt(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        # d sqrt(x) = 1 / (2 sqrt(x))
        (out,) = ctx.saved_tensors
        return g / (2 * out)


class Tanh(Function):
    name = "tanh"

    @staticmethod
    def forward(ctx, x):
        out = backend.xp_of(x).tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        # d tanh = 1 - tanh^2
        (out,) = ctx.saved_tensors
        return g * (1 - out * out)


class Sin(Function):
    name = "sin"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.xp_of(x).sin(x)

    @staticmethod
    def backward(ctx, g):
        # d sin = cos
        (x,) = ctx.saved_tensors
        return g * backend.xp_of(x).cos(x)


class Cos(Function):
    name = "cos"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.xp_of(x).cos(x)

    @staticmethod
    def backward(ctx, g):
        # d cos = -sin
        (x,) = ctx.saved_tensors
        return -g * backend.xp_of(x).sin(x)


def _sigmoid(x):
    # exp of a non-positive number only, so large |x| never overflows
    xp = backend.xp_of(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


class Sigmoid(Function):
    name = "sigmoid"

    @staticmethod
    def forward(ctx, x):
        out = _sigmoid(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        # d s(x) = s(x) (1 - s(x))
        (out,) = ctx.saved_tensors
        return g * out * (1 - out)


class ReLU(Function):
    name = "relu"

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x > 0)
        return backend.xp_of(x).maximum(x, 0).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        # d relu = [x > 0]  (0 at x = 0, as in torch)
        (positive,) = ctx.saved_tensors
        return g * positive


def gelu_tanh_reference(x):
    """GPT-2's GELU exactly as the formula reads (picoGPT's one line): what the fast path is tested against."""
    xp = backend.xp_of(x)
    return 0.5 * x * (1 + xp.tanh(_SQRT_2_OVER_PI * (x + _GELU_TANH_C * x**3)))


def gelu_tanh_backward_reference(x, g):
    """g * d/dx of gelu_tanh_reference: 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3c x^2)."""
    xp = backend.xp_of(x)
    t = xp.tanh(_SQRT_2_OVER_PI * (x + _GELU_TANH_C * x**3))
    return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * _GELU_TANH_C * x * x))


# The fast path: the same formulas as a chain of in-place ufuncs on preallocated buffers (x**3 is a slow
# powf, and each temporary of an activation-sized array costs an allocation and a pass over memory),
# run in slices on the matmul threads by backend.parallel_elementwise.
def _gelu_tanh_forward(x, t, out):
    """t = tanh(sqrt(2/pi) x (1 + c x^2)), out = 0.5 x (1 + t), in place."""
    xp = backend.xp_of(x)
    xp.multiply(x, x, out=t)
    t *= _GELU_TANH_C
    t += 1
    t *= x
    t *= _SQRT_2_OVER_PI
    xp.tanh(t, out=t)
    xp.add(t, 1, out=out)
    out *= x
    out *= 0.5


def _gelu_tanh_backward(x, t, g, d, tmp):
    """d = g * (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3c x^2)), in two buffers."""
    xp = backend.xp_of(x)
    xp.multiply(x, x, out=d)
    d *= 3 * _GELU_TANH_C
    d += 1
    d *= x
    xp.multiply(t, t, out=tmp)
    xp.subtract(1, tmp, out=tmp)  # 1 - t^2
    d *= tmp
    d *= 0.5 * _SQRT_2_OVER_PI
    d += 0.5
    d += xp.multiply(t, 0.5, out=tmp)  # + 0.5 t, in the spent buffer
    d *= g


class GELU(Function):
    """gelu(x) = x Phi(x); approximate="tanh" is GPT-2's gelu_tanh_reference, computed by the fast path."""

    name = "gelu"

    @staticmethod
    def forward(ctx, x, *, approximate="none"):
        xp = backend.xp_of(x)
        ctx.approximate = approximate
        if approximate == "tanh":
            t, out = xp.empty_like(x), xp.empty_like(x)  # arrays even for a 0-d x
            backend.parallel_elementwise(_gelu_tanh_forward, x, t, out)
            ctx.save_for_backward(x, t)
            return out
        if approximate != "none":
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}.")
        if fused.applies(x):
            out, cdf = fused.gelu(x)  # the two lines below in one pass in C, erf by a vector polynomial
        else:
            cdf = 0.5 * (1 + erf(x * _INV_SQRT_2))
            out = x * cdf
        ctx.save_for_backward(x, cdf)
        return out

    @staticmethod
    def backward(ctx, g):
        x, saved = ctx.saved_tensors
        xp = backend.xp_of(x)
        if ctx.approximate == "tanh":
            # d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3c x^2)
            d, tmp = xp.empty_like(x), xp.empty_like(x)
            g = g if g.shape == x.shape else xp.broadcast_to(g, x.shape)
            backend.parallel_elementwise(_gelu_tanh_backward, x, saved, g, d, tmp)
            return d
        # d/dx x Phi(x) = Phi(x) + x phi(x)
        return g * (saved + x * _INV_SQRT_2PI * xp.exp(-0.5 * x * x))


class SiLU(Function):
    name = "silu"

    @staticmethod
    def forward(ctx, x):
        if fused.applies(x):
            y, s = fused.silu(x)  # the lines below, in one pass in C (tests/test_fused.py)
        else:
            s = _sigmoid(x)
            y = x * s
        ctx.save_for_backward(x, s)
        return y

    @staticmethod
    def backward(ctx, g):
        # d x s(x) = s + x s (1 - s)
        x, s = ctx.saved_tensors
        return g * (s * (1 + x * (1 - s)))


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def sqrt(x):
    return Sqrt.apply(x)


def tanh(x):
    return Tanh.apply(x)


def sin(x):
    return Sin.apply(x)


def cos(x):
    return Cos.apply(x)


def sigmoid(x):
    return Sigmoid.apply(x)


def relu(x):
    return ReLU.apply(x)


def gelu(x, approximate="none"):
    return GELU.apply(x, approximate=approximate)


def silu(x):
    return SiLU.apply(x)

