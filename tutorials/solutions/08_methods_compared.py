"""Solutions to tutorials/08_methods_compared.md's exercises (and the mistakes their checks must catch).

    python tutorials/solutions/08_methods_compared.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tinypeft.course.checks_08 import check_ia3_merge, check_method_param_count  # noqa: E402,F401


# ---- Exercise 1 ----
def method_param_count(config, method, **options):
    d, ff, L = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    if method == "lora":  # query and value: A [r, d] + B [d, r] each
        return L * 2 * options["r"] * (d + d)
    if method == "ia3":
        # key, value: l [d, 1] each. "output.dense" matches by suffix TWO layers per block, both feed-forward
        # (input scaled): attention.output.dense (d -> d): l [1, d], and output.dense (ff -> d): l [1, ff]
        return L * (d + d + d + ff)
    if method == "prompt_tuning":
        return options["num_virtual_tokens"] * d
    if method == "p_tuning":
        n, h = options["num_virtual_tokens"], options["encoder_hidden_size"]
        return n * d + (d * h + h) + (h * h + h) + (h * d + d)
    raise ValueError(method)


# ---- Exercise 2 ----
def ia3_merge(W, b, l, feedforward):
    if feedforward:  # (x * l) W^T = x (W * l[None, :])^T: scale W's columns; b is added after, unchanged
        return W * l[None, :], None if b is None else b.copy()
    # (x W^T + b) * l = x (l[:, None] * W)^T + b * l: scale W's rows and the bias
    return W * l[:, None], None if b is None else b * l


EXERCISES = {
    "check_method_param_count": (method_param_count,),
    "check_ia3_merge": (ia3_merge,),
}


# ---- mistakes the checks must catch ----
def _ia3_counts_output_dense_by_output(config, method, **options):  # scales output.dense's output: d, not ff
    if method == "ia3":
        return config.num_hidden_layers * 3 * config.hidden_size
    return method_param_count(config, method, **options)


def _forgets_the_bias(W, b, l, feedforward):  # output scaling must scale the bias too
    return (W * l[None, :], b) if feedforward else (W * l[:, None], b)


MISTAKES = {
    "check_method_param_count": (_ia3_counts_output_dense_by_output,),
    "check_ia3_merge": (_forgets_the_bias,),
}

if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
