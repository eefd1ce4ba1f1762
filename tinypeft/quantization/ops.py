"""quantized_linear: y = x W~^T + b with W~ the dequantized frozen weight, as one Function; and
lora_quantized_linear, LoRA on top of it in the same op (QLoRA's layer).

    forward   y  = x W~^T + b                 x [..., k], W~ [n, k], b [n] -> [..., n]
    backward  dx = g W~,  db = sum(g)          (W is frozen: no dW, ever)

Fusing the LoRA path into the op matters for memory: a graph of separate ops keeps every intermediate
[..., n] output alive until backward; the fused op keeps only x (or its dropped-out copy) and h = d(x) A^T.

W is not an input of the op (it is not differentiable: 4-bit indices have no gradient); it rides along as
an option. A quantized weight marked trainable is refused with transformers' message. The float32 path runs
the C kernels (a panel of W dequantized at a time); float64 input (gradcheck) runs the NumPy reference.
"""
import numpy as np

from .. import backend
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
    def forward(ctx, x, bias=None, *, weight):
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
        need_x, need_b = ctx.needs_input_grad
        dx = _backward(g, ctx.weight) if need_x else None
        db = g.reshape(-1, g.shape[-1]).sum(axis=0) if need_b else None
        return dx, db


class LoraQuantizedLinear(Function):
    name = "lora_quantized_linear"

    @staticmethod
    def forward(ctx, x, bias, A, B, weight=None, scaling=1.0, keep=None, dropout_scale=1.0):
        if weight.requires_grad:
            raise RuntimeError(PURELY_QUANTIZED_MESSAGE)
        xd = x if keep is None else x * keep * x.dtype.type(dropout_scale)  # d(x)
        h = backend.matmul(xd, A.T)  # [..., k] -> [..., r]
        y = _forward(x, weight)  # the frozen quantized layer
        y += backend.matmul(h, B.T) * y.dtype.type(scaling)  # [..., r] -> [..., n]
        if bias is not None:
            y += bias.astype(y.dtype, copy=False)
        ctx.save_for_backward(xd, h, A, B)
        ctx.weight, ctx.scaling, ctx.keep, ctx.dropout_scale = weight, scaling, keep, dropout_scale
        return y

    @staticmethod
    def backward(ctx, g):
        # dB = s g^T h;  dh = s g B;  dA = dh^T d(x);  dx = g W~ + d'(dh A);  db = sum(g)
        xd, h, A, B = ctx.saved_tensors
        need_x, need_b, need_a, need_bb = ctx.needs_input_grad
        s = g.dtype.type(ctx.scaling)
        g2 = g.reshape(-1, g.shape[-1])  # [rows, n]
        dB = backend.matmul(g2.T, h.reshape(-1, h.shape[-1])) * s if need_bb else None  # [n, r]
        dh = backend.matmul(g, B) * s if (need_a or need_x) else None  # [..., r]
        dA = backend.matmul(dh.reshape(-1, dh.shape[-1]).T, xd.reshape(-1, xd.shape[-1])) if need_a else None
        dx = None
        if need_x:
            dx = _backward(g, ctx.weight)
            lora_dx = backend.matmul(dh, A)
            if ctx.keep is not None:
                lora_dx = lora_dx * ctx.keep * g.dtype.type(ctx.dropout_scale)
            dx += lora_dx
        db = g2.sum(axis=0) if need_b else None
        return dx, db, dA, dB


def lora_quantized_linear(x, weight, bias, lora_A, lora_B, scaling, dropout_p=0.0, training=False):
    """y = x dequantize(W)^T + b + scaling * dropout(x) A^T B^T in one op (W a Params4bit / Int8Params)."""
    from ..ops.lora import _dropout_args

    return LoraQuantizedLinear.apply(x, bias, lora_A, lora_B, weight=weight, scaling=scaling,
                                     **_dropout_args(x, dropout_p, training))


def quantized_linear(input, weight, bias=None):
    """y = input @ dequantize(weight)^T + bias for a Params4bit / Int8Params weight."""
    return QuantizedLinear.apply(input, bias, weight=weight)
