"""Solutions to tutorials/10_generation_and_kv_cache.md's exercises (and the mistakes their checks must catch).

    python tutorials/solutions/10_generation_and_kv_cache.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tinypeft.course.checks_10 import (  # noqa: E402
    check_greedy_with_cache,
    check_positions_from_mask,
    check_top_k_filter,
)


# ---- Exercise 1 ----
def top_k_filter(logits, k):
    kth = np.sort(logits, axis=-1)[:, -k][:, None]  # [B, 1]: each row's k-th largest
    return np.where(logits < kth, -np.inf, logits)


# ---- Exercise 2 ----
def positions_from_mask(mask):
    return np.cumsum(mask, axis=-1) - 1  # real tokens counted from 0; pads get -1 or a repeat (ignored)


# ---- Exercise 3 ----
def greedy_with_cache(model, ids, n_new):
    import tinypeft as tp

    past, feed = None, ids
    with tp.no_grad():
        for _ in range(n_new):
            out = model(input_ids=feed, past_key_values=past, use_cache=True)
            next_id = out.logits.numpy()[:, -1].argmax(-1)  # [1]
            ids = np.concatenate([ids, next_id[:, None]], axis=1)
            past, feed = out.past_key_values, next_id[:, None]  # next time: only the new token
    return ids


EXERCISES = {
    "check_top_k_filter": (top_k_filter,),
    "check_positions_from_mask": (positions_from_mask,),
    "check_greedy_with_cache": (greedy_with_cache,),
}


# ---- mistakes the checks must catch ----
def _top_k_drops_the_kth(logits, k):  # `<=` instead of `<`: keeps k - 1
    kth = np.sort(logits, axis=-1)[:, -k][:, None]
    return np.where(logits <= kth, -np.inf, logits)


def _positions_by_column(mask):  # ignores the padding: the first real token gets the pad count
    return np.broadcast_to(np.arange(mask.shape[1]), mask.shape)


def _greedy_without_cache(model, ids, n_new):  # right tokens, but the whole sequence every step
    import tinypeft as tp

    with tp.no_grad():
        for _ in range(n_new):
            next_id = model(input_ids=ids).logits.numpy()[:, -1].argmax(-1)
            ids = np.concatenate([ids, next_id[:, None]], axis=1)
    return ids


MISTAKES = {
    "check_top_k_filter": (_top_k_drops_the_kth,),
    "check_positions_from_mask": (_positions_by_column,),
    "check_greedy_with_cache": (_greedy_without_cache,),
}

if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
