"""Solutions to tutorials/07_quicktour.md's exercises (and the mistakes their checks must catch).

    python tutorials/solutions/07_quicktour.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tinypeft.course.checks_07 import (  # noqa: E402,F401
    check_mt5_lora_count,
    check_trainable_line,
)


# ---- Exercise 1 ----
def trainable_line(model):
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:  # a tied weight is one array under two names: count it once
            continue
        seen.add(id(p))
        n = int(np.prod(p.shape))
        total += n
        trainable += n if p.requires_grad else 0
    return f"trainable params: {trainable:,d} || all params: {total:,d} || trainable%: {100 * trainable / total:.4f}"


# ---- Exercise 2 ----
def mt5_lora_count(config, r, targets):
    d, inner, ff = config.d_model, config.num_heads * config.d_kv, config.d_ff
    gated = config.feed_forward_proj.startswith("gated")
    shapes = {"q": (d, inner), "k": (d, inner), "v": (d, inner), "o": (inner, d), "wo": (ff, d)}
    shapes.update({"wi_0": (d, ff), "wi_1": (d, ff)} if gated else {"wi": (d, ff)})
    attention_blocks = config.num_layers + 2 * config.num_decoder_layers  # decoder: self and cross
    ff_blocks = config.num_layers + config.num_decoder_layers
    total = 0
    for t in targets:
        if t not in shapes:
            continue  # not in this model (wi in a gated model, wi_0 in a relu one)
        d_in, d_out = shapes[t]
        per_layer = r * d_in + d_out * r  # lora_A [r, in], lora_B [out, r]
        total += per_layer * (attention_blocks if t in ("q", "k", "v", "o") else ff_blocks)
    return total


EXERCISES = {
    "check_trainable_line": (trainable_line,),
    "check_mt5_lora_count": (mt5_lora_count,),
}


# ---- mistakes the checks must catch ----
def _counts_tied_twice(model):  # the state dict lists lm_head.weight and wte.weight separately
    params = [p for _, p in model.named_parameters(remove_duplicate=False)]
    t = sum(int(np.prod(p.shape)) for p in params if p.requires_grad)
    a = sum(int(np.prod(p.shape)) for p in params)
    return f"trainable params: {t:,d} || all params: {a:,d} || trainable%: {100 * t / a:.4f}"


def _forgets_cross_attention(config, r, targets):
    d, inner = config.d_model, config.num_heads * config.d_kv
    total = 0
    for t in targets:
        if t in ("q", "k", "v", "o"):
            total += r * (d + inner) * (config.num_layers + config.num_decoder_layers)
        elif t in ("wi", "wi_0", "wi_1", "wo"):
            total += r * (d + config.d_ff) * (config.num_layers + config.num_decoder_layers)
    return total


MISTAKES = {
    "check_trainable_line": (_counts_tied_twice,),
    "check_mt5_lora_count": (_forgets_cross_attention,),
}


if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
