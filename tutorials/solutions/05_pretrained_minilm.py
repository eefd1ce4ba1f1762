"""Solutions to tutorials/05_pretrained_minilm.md's exercises (and the mistakes their checks must catch).

    python tutorials/solutions/05_pretrained_minilm.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tinypeft.course.checks_05 import (  # noqa: E402
    check_predict_bf16_first_integer,
    check_predict_bf16_relative_error,
    check_sentence_embedding,
)


# ---- Exercise 1 ----
# 7 stored bits + the implicit leading 1 = 8 bits of significand: every integer up to 2^8 = 256 is exact; 257
# needs 9 bits (1 0000 0001) and rounds (to even: 256).
first_inexact_integer = 257

# ---- Exercise 2 ----
# one step (ulp) is 2^-7 of the value's leading power of two; rounding to nearest moves by at most half a step,
# relative to a value in [2^e, 2^(e+1)): at most 2^-8 = 0.0039 (just below, at values just above 2^e).
worst_relative_error = 2.0**-8


# ---- Exercise 3 ----
def sentence_embedding(last_hidden_state, attention_mask):
    m = attention_mask[:, :, None].astype(last_hidden_state.dtype)  # [B, T, 1]
    mean = (last_hidden_state * m).sum(1) / np.maximum(m.sum(1), 1e-9)  # [B, D]: pads count 0
    return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)


EXERCISES = {
    "check_predict_bf16_first_integer": (first_inexact_integer,),
    "check_predict_bf16_relative_error": (worst_relative_error,),
    "check_sentence_embedding": (sentence_embedding,),
}


# ---- mistakes the checks must catch ----
_forgets_the_implicit_bit = 129  # 2^7 + 1: counts only the 7 stored bits
_truncation_step = 2.0**-7  # a whole step: what truncating (not rounding) can lose


def _mean_over_padding_too(last_hidden_state, attention_mask):
    mean = last_hidden_state.mean(1)
    return mean / np.linalg.norm(mean, axis=1, keepdims=True)


STUBS = {"check_predict_bf16_first_integer": (None,), "check_predict_bf16_relative_error": (None,)}

MISTAKES = {
    "check_predict_bf16_first_integer": (_forgets_the_implicit_bit,),
    "check_predict_bf16_relative_error": (_truncation_step,),
    "check_sentence_embedding": (_mean_over_padding_too,),
}

if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
