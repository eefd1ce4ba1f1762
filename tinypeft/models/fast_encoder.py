"""BERT's encoder layers for inference, on the arrays behind the parameters: no graph, no Tensor per op.

BertEncoder.forward (the reference path, which knows every option and builds the graph) hands its layers
to encode() below when nothing needs a gradient, dropout is off, and every layer is the plain BertLayer
with exact GELU, in float32 on the CPU with the C kernels. The arithmetic is the modules' own, in the same
order, with fewer passes and fewer buffers:

    per layer:  q, k, v = x Wq^T + bq, ...         three products into buffers kept for the whole stack
                ctx = attention(q, k, v, mask)     fused C kernel, reading the heads as views, [B*T, D] out
                a = LayerNorm(ctx Wo^T + bo + x)   the residual added in place, the norm in place
                y = LayerNorm(gelu(a Wi^T + bi) Wo2^T + bo2 + a)

A layer adapted by PEFT (LoRA, IA3, ...) is another class, so the reference path runs it.
tests/test_bert.py checks that both paths give the same hidden states.
"""
import numpy as np

from .. import backend
from ..autograd import is_grad_enabled
from ..backend import cmatmul, fused


def _linear(x, layer, out):
    """out = x W^T + b for an nn.Linear, x [rows, in] -> out [rows, out]."""
    cmatmul.matmul(x, layer.weight.data.T, out=out)
    if layer.bias is not None:
        out += layer.bias.data
    return out


def _add_layer_norm(h, residual, norm):
    """LayerNorm(h + residual), in place in h."""
    h += residual
    w, b = (None if p is None else p.data for p in (norm.weight, norm.bias))
    return fused.layer_norm(h, w, b, norm.eps, out=h, keep_xhat=False)[0]


def encode(layers, x, mask):
    """x [B, T, D] float32 -> the last layer's hidden states [B, T, D] (a new array); mask as attention takes
    it (bool [B, 1, T, T] or None)."""
    B, T, D = x.shape
    sa = layers[0].attention.self
    H, hd = sa.num_attention_heads, sa.attention_head_size
    x = np.array(x, dtype=np.float32, order="C").reshape(B * T, D)  # the residual stream, ours to overwrite
    q, k, v, a = (np.empty_like(x) for _ in range(4))
    inter = np.empty((B * T, layers[0].intermediate.dense.out_features), np.float32)
    heads = lambda t: t.reshape(B, T, H, hd).transpose(0, 2, 1, 3)  # noqa: E731  [B*T, D] -> [B, H, T, hd] view
    for layer in layers:
        sa, so = layer.attention.self, layer.attention.output
        ctx = fused.attention(heads(_linear(x, sa.query, q)), heads(_linear(x, sa.key, k)),
                              heads(_linear(x, sa.value, v)), mask, sa.scaling)[0]  # [B, H, T, hd]
        ctx = ctx.transpose(0, 2, 1, 3).reshape(B * T, D)  # a view: the kernel wrote [B, T, H, hd]
        _add_layer_norm(_linear(ctx, so.dense, a), x, so.LayerNorm)
        fused.gelu(_linear(a, layer.intermediate.dense, inter), out=inter, keep_cdf=False)
        _add_layer_norm(_linear(inter, layer.output.dense, x), a, layer.output.LayerNorm)
    return x.reshape(B, T, D)


def applies(encoder, hidden_states, mask, past_key_values):
    """True when encode() gives what the encoder's modules would, and nothing needs their graph."""
    from .. import functional as F
    from .. import nn
    from .bert import BertAttention, BertIntermediate, BertLayer, BertOutput, BertSelfAttention, BertSelfOutput

    if past_key_values is not None or encoder.training or backend.get_device() != "cpu":
        return False
    x = hidden_states.data
    if not (type(x) is np.ndarray and x.dtype == np.float32 and fused.applies(x) and len(encoder.layer)):
        return False
    if mask is not None and not (type(mask) is np.ndarray and mask.dtype == np.bool_):
        return False
    plain = {BertLayer, BertAttention, BertSelfAttention, BertSelfOutput, BertIntermediate, BertOutput, nn.Linear,
             nn.LayerNorm, nn.Dropout}
    mods = [m for layer in encoder.layer for _, m in layer.named_modules()]
    if any(type(m) not in plain for m in mods):
        return False
    if any(layer.intermediate.intermediate_act_fn is not F.gelu for layer in encoder.layer):
        return False
    if any(type(m) is nn.LayerNorm and m.normalized_shape != x.shape[-1:] for m in mods):
        return False
    params = [p for m in mods for p in m.parameters(recurse=False)]
    if any(p.data.dtype != np.float32 or type(p.data) is not np.ndarray for p in params):
        return False
    return not is_grad_enabled() or not (hidden_states.requires_grad or any(p.requires_grad for p in params))


__all__ = ["encode", "applies"]
