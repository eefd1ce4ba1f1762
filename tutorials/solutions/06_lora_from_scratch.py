"""Solutions to tutorials/06_lora_from_scratch.md's exercises (and the mistakes their checks must catch).

    python tutorials/solutions/06_lora_from_scratch.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tinypeft.course.checks_06 import (  # noqa: E402
    check_lora_backward_dropout,
    check_lora_param_count,
    check_merge_weight,
)


# ---- Exercise 1 ----
def lora_backward_dropout(g, x, W, A, B, s, keep, p):
    """Only the LoRA branch sees d(x): dA uses d(x) for x, and the LoRA share of dx goes back through d."""
    xd = x * keep / (1 - p)  # d(x)
    h = xd @ A.T  # [N, r]
    dB = s * g.T @ h  # [out, r]
    dh = s * g @ B  # [N, r]
    dA = dh.T @ xd  # [r, in]: x replaced by d(x)
    dx = g @ W + (dh @ A) * keep / (1 - p)  # d is linear in x: its backward is the same mask and scale
    return dx, dA, dB


# ---- Exercise 2 ----
def merge_weight(W, A, B, s, fan_in_fan_out=False):
    delta = s * B @ A  # [out, r] @ [r, in] -> [out, in]
    return W + (delta.T if fan_in_fan_out else delta)  # Conv1D stores [in, out]


# ---- Exercise 3 ----
def lora_param_count(config, r, target_modules=("c_attn",)):
    d = config.n_embd
    inner = config.n_inner if config.n_inner is not None else 4 * d
    per_block = {  # r * (in + out) for each matching layer of one block
        "c_attn": [(d, 3 * d)],
        "c_proj": [(d, d), (inner, d)],  # attn.c_proj and mlp.c_proj
        "c_fc": [(d, inner)],
    }
    return config.n_layer * sum(r * (i + o) for name in target_modules for i, o in per_block[name])


EXERCISES = {
    "check_lora_backward_dropout": (lora_backward_dropout,),
    "check_merge_weight": (merge_weight,),
    "check_lora_param_count": (lora_param_count,),
}


# ---- mistakes the checks must catch ----
def _dropout_forgotten_in_dx(g, x, W, A, B, s, keep, p):  # dA right, but dx skips the mask
    xd = x * keep / (1 - p)
    dh = s * g @ B
    return g @ W + dh @ A, dh.T @ xd, s * g.T @ (xd @ A.T)


def _merge_without_transpose(W, A, B, s, fan_in_fan_out=False):  # loralib's bug: Conv1D gets [out, in]
    return W + s * B @ A


def _c_proj_counted_once(config, r, target_modules=("c_attn",)):  # forgets the MLP's c_proj
    d = config.n_embd
    inner = config.n_inner if config.n_inner is not None else 4 * d
    sizes = {"c_attn": d + 3 * d, "c_proj": d + d, "c_fc": d + inner}
    return config.n_layer * r * sum(sizes[name] for name in target_modules)


MISTAKES = {
    "check_lora_backward_dropout": (_dropout_forgotten_in_dx,),
    "check_merge_weight": (_merge_without_transpose,),
    "check_lora_param_count": (_c_proj_counted_once,),
}

if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
