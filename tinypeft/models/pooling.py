"""Sentence embeddings from an encoder's token states, as sentence-transformers makes them.

all-MiniLM-L6-v2 and its kin: the mean of the token vectors over the real (non-padding) tokens, then
scaled to unit length, so that the dot product of two embeddings is their cosine similarity.
"""
import numpy as np

from ..ops.shape import where
from ..tensor import as_array


def mean_pooling(last_hidden_state, attention_mask):
    """[B, T, D] token states, [B, T] mask (1 = real token) -> [B, D] mean over the real tokens."""
    mask = as_array(attention_mask).astype(last_hidden_state.dtype)
    m = mask[:, :, None]  # [B, T, 1]
    summed = (last_hidden_state * m).sum(1)  # [B, D]; pads contribute 0
    count = np.maximum(m.sum(1), 1e-9)  # [B, 1]; an all-padding row divides by ~0, not 0
    return summed / count


def normalize(x, p=2.0, dim=-1, eps=1e-12):
    """torch.nn.functional.normalize for p = 2: x / max(||x||_2, eps) along dim."""
    if p != 2:
        raise ValueError("normalize: only the L2 norm (p=2) is supported.")
    norm = (x * x).sum(dim, keepdim=True).sqrt()
    return x / where(norm.data > eps, norm, eps)


def sentence_embeddings(model, input_ids, attention_mask, token_type_ids=None):
    """Unit-length sentence vectors [B, D] from an encoder (BertModel) and a tokenized batch."""
    out = model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
    return normalize(mean_pooling(out.last_hidden_state, attention_mask))
