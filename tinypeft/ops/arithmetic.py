"""Arithmetic: add, sub, mul, div, neg, pow, matmul.

Every binary op broadcasts like NumPy; the engine (autograd.unbroadcast) sums each gradient back to its
operand's shape, so the backward here is written for same-shaped operands.
"""
from .. import backend
import numpy as np

from ..autograd import Function, unbroadcast


class Add(Function):
    name = "add"

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        # d(a+b)/da = d(a+b)/db = 1
        return g, g


class Sub(Function):
    name = "sub"

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, g):
        # d(a-b)/da = 1, d(a-b)/db = -1
        return g, (-g if ctx.needs_input_grad[1] else None)


class Mul(Function):
    name = "mul"

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        # d(ab)/da = b, d(ab)/db = a
        a, b = ctx.saved_tensors
        return (g * b if ctx.needs_input_grad[0] else None), (g * a if ctx.needs_input_grad[1] else None)


class Div(Function):
    name = "div"

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, g):
        # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
        a, b = ctx.saved_tensors
        ga = g / b if ctx.needs_input_grad[0] else None
        gb = -g * a / (b * b) if ctx.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    name = "neg"

    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class Pow(Function):
    """a ** b with a tensor exponent too (b is usually a Python number)."""

    name = "pow"

    @staticmethod
    def forward(ctx, a, b):
        out = a**b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        # d(a^b)/da = b a^(b-1);  d(a^b)/db = a^b log a  (defined for a > 0)
        a, b, out = ctx.saved_tensors
        xp = backend.xp_of(a)
        ga = g * b * a ** (b - 1) if ctx.needs_input_grad[0] else None
        gb = None
        if ctx.needs_input_grad[1]:
            gb = g * out * xp.log(xp.where(a > 0, a, 1))
        return ga, gb


class MatMul(Function):
    name = "matmul"

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: both arguments need at least 1 dimension (use * for scalars).")
        # dA reads only B and dB only A: a frozen weight keeps no activation alive
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b if ctx.needs_input_grad[0] else None)
        ctx.shapes = a.shape, b.shape
        return backend.matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        # C = A B:  dA = dC B^T,  dB = A^T dC. A 1-D operand is promoted to a matrix ([k] -> [1, k] or [k, 1])
        # and the gradient is reshaped to match; the engine sums broadcast batch dims back.
        a, b = ctx.saved_tensors
        a_shape, b_shape = ctx.shapes
        a2_shape = (1,) + a_shape if len(a_shape) == 1 else a_shape
        b2_shape = b_shape + (1,) if len(b_shape) == 1 else b_shape
        batch = np.broadcast_shapes(a2_shape[:-2], b2_shape[:-2])
        g2 = g.reshape(batch + (a2_shape[-2], b2_shape[-1]))
        ga = gb = None
        if ctx.needs_input_grad[0]:
            b2 = b.reshape(b2_shape)
            ga = backend.matmul(g2, b2.swapaxes(-1, -2))
            ga = unbroadcast(ga, a2_shape).reshape(a_shape)
        if ctx.needs_input_grad[1]:
            a2 = a.reshape(a2_shape)
            if len(b2_shape) == 2 and g2.ndim > 2:
                # [..., m, k]^T @ [..., m, n] summed over the batch = one GEMM on folded rows.
                gb = backend.matmul(a2.reshape(-1, a2.shape[-1]).T, g2.reshape(-1, g2.shape[-1]))
            else:
                gb = unbroadcast(backend.matmul(a2.swapaxes(-1, -2), g2), b2_shape)
            gb = gb.reshape(b_shape)
        return ga, gb


def add(a, b):
    return Add.apply(a, b)


def sub(a, b):
    return Sub.apply(a, b)


def mul(a, b):
    return Mul.apply(a, b)


def div(a, b):
    return Div.apply(a, b)


def neg(a):
    return Neg.apply(a)


def pow(a, b):
    return Pow.apply(a, b)


def matmul(a, b):
    return MatMul.apply(a, b)
