"""Attention masks: the 2-D padding mask of a batch, turned into the [B, 1, q, k] mask attention uses; and where
the new queries sit (after the past_length positions of the key/value cache)."""
import numpy as np

from ..tensor import as_array


def attention_mask_4d(attention_mask, batch_size, q_len, kv_len, causal):
    """Boolean [B, 1, q_len, kv_len], True where a query may attend to a key; None when nothing is masked.

    The q_len queries are the last q_len of the kv_len positions (the rest are cached past keys), so
    query i sits at position kv_len - q_len + i. A row with no allowed key (a left-padding query)
    is opened up entirely instead: its output is ignored anyway, and this keeps softmax free of NaN.
    """
    if attention_mask is None and not causal:
        return None
    allowed = np.ones((batch_size, 1, q_len, kv_len), dtype=bool)
    if causal:
        past = kv_len - q_len
        allowed &= np.arange(kv_len)[None, :] <= (np.arange(q_len)[:, None] + past)
    if attention_mask is not None:
        m = as_array(attention_mask)
        if m.shape != (batch_size, kv_len):
            raise ValueError(
                f"attention_mask has shape {m.shape}; expected (batch, past + new tokens) = {(batch_size, kv_len)}."
            )
        allowed &= m.astype(bool)[:, None, None, :]
    empty = ~allowed.any(axis=-1, keepdims=True)
    return allowed | empty


def position_ids_from_mask(attention_mask, past_len, q_len):
    """Positions that skip left padding: the cumulative count of real tokens, minus one (pads get 1)."""
    m = as_array(attention_mask).astype(np.int64)
    pos = np.cumsum(m, axis=-1) - 1
    pos[m == 0] = 1
    return pos[:, past_len : past_len + q_len]


def default_position_ids(past_len, q_len, batch_size):
    """[B, q_len] positions past_len, past_len + 1, ... for every row (no padding information)."""
    return np.broadcast_to(np.arange(past_len, past_len + q_len), (batch_size, q_len))


def past_length(past_key_values):
    """How many positions the key/value cache holds already (transformers' cache.get_seq_length()): one
    (key, value) pair per layer, each [B, H, T_past, hd]; 0 without a cache."""
    return 0 if past_key_values is None else past_key_values[0][0].shape[-2]
