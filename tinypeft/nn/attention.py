"""MultiheadAttention: torch.nn.MultiheadAttention (its arguments, names, init and outputs).

Query, key and value share one packed projection in_proj_weight [3E, E] (q rows first, then k, then v) and
in_proj_bias [3E]; out_proj is a Linear(E, E). With H heads of d = E / H:

    q, k, v = x_q Wq^T + bq, x_k Wk^T + bk, x_v Wv^T + bv            [N, L|S, E] -> [N, H, L|S, d]
    A = softmax(q k^T / sqrt(d) + mask)                               [N, H, L, S]
    y = (A v, heads joined) Wo^T + bo                                 [N, L, E]

Masks follow torch: attn_mask [L, S] or [N*H, L, S] and key_padding_mask [N, S], bool (True = may NOT attend)
or float (added to the scores). forward returns (y, A averaged over heads) when need_weights, else (y, None);
the weights need A itself, so that path spells out softmax(q k^T) v, while need_weights=False runs the fused
scaled_dot_product_attention op (the same numbers: tests/test_multihead_attention.py compares the two).
Only ops with proven backward passes are used (linear, matmul, softmax, dropout, sdpa), so no new op is needed.
"""
import math

import numpy as np

from .. import functional as F
from ..tensor import Tensor
from . import init
from .linear import Linear
from .module import Module, Parameter


class MultiheadAttention(Module):
    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, dtype=None):
        super().__init__()
        unsupported = {"add_bias_kv": add_bias_kv, "add_zero_attn": add_zero_attn}
        for name, value in unsupported.items():
            if value:
                raise NotImplementedError(f"MultiheadAttention: {name}=True is not implemented by tinypeft; "
                                          "leave it False (torch's default).")
        if kdim not in (None, embed_dim) or vdim not in (None, embed_dim):
            raise NotImplementedError(f"MultiheadAttention: kdim={kdim} / vdim={vdim} differing from embed_dim="
                                      f"{embed_dim} (separate q/k/v projections) is not implemented by tinypeft.")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by num_heads "
                             f"({num_heads}).")
        self.embed_dim, self.kdim, self.vdim = embed_dim, embed_dim, embed_dim
        self._qkv_same_embed_dim = True
        self.num_heads, self.dropout, self.batch_first = num_heads, dropout, batch_first
        self.head_dim = embed_dim // num_heads
        self.in_proj_weight = Parameter(init.empty(3 * embed_dim, embed_dim, dtype=dtype))  # [3E, E]
        if bias:
            self.in_proj_bias = Parameter(init.empty(3 * embed_dim, dtype=dtype))  # [3E]
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        self.bias_k = self.bias_v = None
        self.add_zero_attn = False
        self._reset_parameters()

    def _reset_parameters(self):
        # torch's: Xavier-uniform packed projection, zero biases; out_proj keeps Linear's own weight init
        init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        # [L, N, E] ([N, L, E] if batch_first, [L, E] unbatched) -> (same shape, [N, L, S] weights or None)
        return self._attention(query, key, value, self.in_proj_weight, self.out_proj.weight, key_padding_mask,
                               need_weights, attn_mask, average_attn_weights, is_causal)

    def _attention(self, query, key, value, in_proj_weight, out_proj_weight, key_padding_mask=None,
                   need_weights=True, attn_mask=None, average_attn_weights=True, is_causal=False):
        """The forward with other projection weights (LoRA passes W + s B A for both)."""
        if is_causal and attn_mask is None:
            raise ValueError("MultiheadAttention: is_causal=True is a hint that attn_mask is the causal mask; pass "
                             "that attn_mask too (as torch requires).")
        unbatched = query.ndim == 2
        if unbatched:  # [L, E] -> [1, L, E]
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            key_padding_mask = None if key_padding_mask is None else key_padding_mask.unsqueeze(0)
        elif not self.batch_first:  # [L, N, E] -> [N, L, E]
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        E, H, d = self.embed_dim, self.num_heads, self.head_dim
        N, L, S = query.shape[0], query.shape[1], key.shape[1]
        b = self.in_proj_bias
        q, k, v = (F.linear(x, in_proj_weight[i * E:(i + 1) * E], None if b is None else b[i * E:(i + 1) * E])
                   for i, x in enumerate((query, key, value)))  # [N, L|S, E] each
        q, k, v = (t.reshape(N, t.shape[1], H, d).permute(0, 2, 1, 3) for t in (q, k, v))  # [N, H, L|S, d]
        mask = _scores_mask(attn_mask, key_padding_mask, N, H, L, S, q)  # [N|1, H|1, L, S] or None
        p = self.dropout if self.training else 0.0
        if need_weights:
            scores = (q * (1.0 / math.sqrt(d))) @ k.transpose(-1, -2)  # [N, H, L, S]
            weights = F.softmax(scores if mask is None else scores + mask, -1)
            weights = F.dropout(weights, p) if p > 0 else weights
            out = weights @ v  # [N, H, L, d]
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        out = out.permute(0, 2, 1, 3).reshape(N, L, E)  # heads joined
        out = F.linear(out, out_proj_weight, self.out_proj.bias)  # [N, L, E]
        out = out.squeeze(0) if unbatched else out if self.batch_first else out.transpose(0, 1)
        if not need_weights:
            return out, None
        weights = weights.mean(1) if average_attn_weights else weights  # [N, L, S] or [N, H, L, S]
        return out, (weights.squeeze(0) if unbatched else weights)

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, batch_first={self.batch_first}"


def _scores_mask(attn_mask, key_padding_mask, N, H, L, S, like):
    """attn_mask and key_padding_mask as one float mask to add to the scores [N, H, L, S] (None if neither)."""
    mask = None
    if attn_mask is not None:  # [L, S] broadcasts as it is; [N*H, L, S] -> [N, H, L, S]
        mask = _float_mask(attn_mask, like)
        mask = mask if mask.ndim == 2 else mask.reshape(N, H, L, S)
    if key_padding_mask is not None:  # [N, S] -> [N, 1, 1, S]: the same keys hidden from every head and query
        m = _float_mask(key_padding_mask, like).reshape(N, 1, 1, S)
        mask = m if mask is None else mask + m
    return mask


def _float_mask(mask, like):
    """torch's convention: a bool mask hides the True positions (-inf); a float mask is added as it is."""
    mask = mask if isinstance(mask, Tensor) else Tensor(mask)
    if mask.dtype == bool:
        return Tensor(like.xp.where(mask.data, -np.inf, 0.0).astype(like.dtype))
    return mask


__all__ = ["MultiheadAttention"]
