"""sdpa_attention_forward (transformers.integrations.sdpa_attention's name): what every architecture's attention
does once its projections have made the heads.

    q [B, H, T, hd], k and v [B, H_kv, S, hd]  ->  softmax(q k^T * scaling + mask) v  [B, H, T, hd]  ->  [B, T, H * hd]

The attention itself is one op, F.scaled_dot_product_attention (tinypeft/ops/attention.py, with its backward);
this adds the merge of the heads back into one row per token, ready for the output projection.
"""
from .. import functional as F


def sdpa_attention_forward(query, key, value, attention_mask, dropout=0.0, scaling=None, enable_gqa=False):
    """attention_mask: a boolean [B, 1, T, S] (True: may attend) or an additive float bias, or None. dropout:
    the attention-probability dropout (pass 0.0 when not training). enable_gqa: H_kv may divide H (Llama)."""
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=dropout,
                                         scale=scaling, enable_gqa=enable_gqa)
    B, H, T, hd = out.shape
    return out.transpose(1, 2).reshape(B, T, H * hd)  # [B, H, T, hd] -> [B, T, H * hd]
