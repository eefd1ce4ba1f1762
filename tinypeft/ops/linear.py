"""linear: y = x W^T + b with torch's weight layout [out_features, in_features], as one fused Function.

Fusing matters for parameter-efficient fine-tuning: the base model's weights are frozen, and the backward
then does only the one GEMM that carries the gradient on to the input, never dW = g^T x.
"""
from .. import backend
from ..autograd import Function


class Linear(Function):
    name = "linear"

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        # x [..., in], weight [out, in], bias [out] -> [..., out]
        out = backend.matmul(x, weight.T) if x.ndim >= 2 else backend.matmul(x[None], weight.T)[0]
        if bias is not None:
            out += bias
        # x is needed only for dW, and W only for dx: keep no more than the backward will read
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        ctx.save_for_backward(x if need_w else None, weight if need_x else None)
        ctx.x_shape = x.shape
        return out

    @staticmethod
    def backward(ctx, g):
        # y = x W^T + b:  dx = g W,  dW = g^T x (all leading dims folded into one GEMM),  db = sum(g)
        x, weight = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_b = len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]
        g2 = g.reshape(-1, g.shape[-1])  # [rows, out]
        dx = backend.matmul(g2, weight).reshape(ctx.x_shape) if need_x else None
        dw = backend.matmul(g2.T, x.reshape(-1, x.shape[-1])) if need_w else None  # [out, in]
        db = g2.sum(axis=0) if need_b else None
        return dx, dw, db


def linear(input, weight, bias=None):
    """torch.nn.functional.linear: input [..., in], weight [out, in], bias [out] or None."""
    return Linear.apply(input, weight) if bias is None else Linear.apply(input, weight, bias)
