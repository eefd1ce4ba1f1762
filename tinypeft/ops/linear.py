"""linear: y = x W^T + b with torch's weight layout [out_features, in_features], as one fused Function;
conv1d_linear: the same with GPT-2's Conv1D layout [in_features, out_features], y = x W + b.

Fusing matters for parameter-efficient fine-tuning: the base model's weights are frozen, and the backward
then does only the one GEMM that carries the gradient on to the input, never dW = g^T x.
"""
from .. import backend
from ..autograd import Function


class Linear(Function):
    name = "linear"

    @staticmethod
    def forward(ctx, x, weight, bias=None, *, fan_in_fan_out=False):
        # x [..., in], weight [out, in] ([in, out] with fan_in_fan_out), bias [out] -> [..., out]
        w = weight if fan_in_fan_out else weight.T  # [in, out]
        out = backend.matmul(x, w) if x.ndim >= 2 else backend.matmul(x[None], w)[0]
        if bias is not None:
            out += bias
        # x is needed only for dW, and W only for dx: keep no more than the backward will read
        need_x, need_w, _ = ctx.needs_input_grad
        ctx.save_for_backward(x if need_w else None, weight if need_x else None)
        ctx.x_shape = x.shape
        ctx.fifo = fan_in_fan_out
        return out

    @staticmethod
    def backward(ctx, g):
        # y = x W^T + b:  dx = g W,  dW = g^T x (all leading dims folded into one GEMM),  db = sum(g)
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        g2 = g.reshape(-1, g.shape[-1])  # [rows, out]
        dx = backend.matmul(g2, weight.T if ctx.fifo else weight).reshape(ctx.x_shape) if need_x else None
        dw = None
        if need_w:
            x2 = x.reshape(-1, x.shape[-1])  # [rows, in]
            dw = backend.matmul(x2.T, g2) if ctx.fifo else backend.matmul(g2.T, x2)  # [in, out] or [out, in]
        db = g2.sum(axis=0) if need_b else None
        return dx, dw, db


def linear(input, weight, bias=None):
    """torch.nn.functional.linear: input [..., in], weight [out, in], bias [out] or None."""
    return Linear.apply(input, weight, bias)


def conv1d_linear(input, weight, bias=None):
    """transformers' Conv1D: input [..., in] @ weight [in, out] + bias [out], one op (no separate add)."""
    return Linear.apply(input, weight, bias, fan_in_fan_out=True)
