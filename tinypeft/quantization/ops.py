"""quantized_linear: y = x W~^T + b with W~ the dequantized frozen weight, as one Function.

    forward   y  = x W~^T + b                 x [..., k], W~ [n, k], b [n] -> [..., n]
    backward  dx = g W~,  db = sum(g)          (W is frozen: no dW, ever)

W is not an input of the op (it is not differentiable: 4-bit indices have no gradient); it rides along as
an option. A quantized weight marked trainable is refused with transformers' message. The float32 path runs
the C kernels (a panel of W dequantized at a time); float64 input (gradcheck) runs the NumPy reference.
"""
import numpy as np

from ..autograd import Function
from . import matmul as qmm

# transformers' Trainer says this when asked to train a quantized model without adapters
PURELY_QUANTIZED_MESSAGE = (
    "You cannot perform fine-tuning on purely quantized models. Please attach trainable adapters on top of "
    "the quantized model to correctly perform fine-tuning. Please see: "
    "https://huggingface.co/docs/transformers/peft for more details"
)


def _forward(x, w):
    if x.dtype == np.float32:
        return qmm.matmul(x, w)
    return x @ qmm.reference_dequantize(w).T.astype(x.dtype)  # float64: the reference, for gradcheck


def _backward(g, w):
    if g.dtype == np.float32:
        return qmm.matmul_t(g, w)
    return g @ qmm.reference_dequantize(w).astype(g.dtype)


class QuantizedLinear(Function):
    name = "quantized_linear"

    @staticmethod
    def forward(ctx, x, bias=None, weight=None):
        if weight.requires_grad:
            raise RuntimeError(PURELY_QUANTIZED_MESSAGE)
        out = _forward(x, weight)  # [..., k] -> [..., n]
        if bias is not None:
            out += bias.astype(out.dtype, copy=False)
        ctx.weight = weight
        return out

    @staticmethod
    def backward(ctx, g):
        # y = x W~^T + b:  dx = g W~ (one GEMM against the frozen weight),  db = sum over rows of g
        need_x = ctx.needs_input_grad[0]
        need_b = len(ctx.needs_input_grad) > 1 and ctx.needs_input_grad[1]
        dx = _backward(g, ctx.weight) if need_x else None
        db = g.reshape(-1, g.shape[-1]).sum(axis=0) if need_b else None
        return dx, db


def quantized_linear(input, weight, bias=None):
    """y = input @ dequantize(weight)^T + bias for a Params4bit / Int8Params weight."""
    args = (input,) if bias is None else (input, bias)
    return QuantizedLinear.apply(*args, weight=weight)
