"""Solutions to tutorials/10_generation_and_kv_cache.md's exercises (and the mistakes their checks must catch).

    python tutorials/solutions/10_generation_and_kv_cache.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tinypeft.course.checks_10 import (  # noqa: E402
    check_predict_tokens_fed,
    check_sample_with_cache,
    check_top_k_filter,
    sample_token,
)


# ---- Exercise 1 ----
def top_k_filter(logits, k):
    kth = np.sort(logits, axis=-1)[:, -k][:, None]  # [B, 1]: each row's k-th largest
    return np.where(logits < kth, -np.inf, logits)


# ---- Exercise 2 ----
# Without the cache every step runs the whole sequence so far: 5 + 6 + ... + 16 = 126 positions. With it the
# first step runs the 5-token prompt, each later step only the newest token: 5 + 11 = 16 (the 12th new token is
# sampled from the last step's logits and never fed).
tokens_fed = {"without cache": 126, "with cache": 16}


# ---- Exercise 3 ----
def sample_with_cache(model, ids, n_new, temperature, rng):
    import tinypeft as tp

    past, feed = None, ids
    with tp.no_grad():
        for _ in range(n_new):
            out = model(input_ids=feed, past_key_values=past, use_cache=True)
            token = sample_token(out.logits.numpy()[0, -1], temperature, rng)
            ids = np.concatenate([ids, [[token]]], axis=1)
            past, feed = out.past_key_values, np.array([[token]])  # next time: only the new token
    return ids


EXERCISES = {
    "check_top_k_filter": (top_k_filter,),
    "check_predict_tokens_fed": (tokens_fed,),
    "check_sample_with_cache": (sample_with_cache,),
}


# ---- mistakes the checks must catch ----
def _top_k_drops_the_kth(logits, k):  # `<=` instead of `<`: keeps k - 1
    kth = np.sort(logits, axis=-1)[:, -k][:, None]
    return np.where(logits <= kth, -np.inf, logits)


_forgot_the_last_step = {"without cache": 126, "with cache": 17}  # the 12th token is never fed back


def _sample_ignoring_temperature(model, ids, n_new, temperature, rng):  # samples at T = 1 whatever is asked
    return sample_with_cache(model, ids, n_new, 1.0, rng)


STUBS = {"check_predict_tokens_fed": (None,)}

MISTAKES = {
    "check_top_k_filter": (_top_k_drops_the_kth,),
    "check_predict_tokens_fed": (_forgot_the_last_step,),
    "check_sample_with_cache": (_sample_ignoring_temperature,),
}

if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
