"""Solutions to tutorials/15_training_stack.md's exercises (and the mistakes their checks must catch).

    python tutorials/solutions/15_training_stack.py
"""
import math
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tinypeft.course.checks_15 import check_bpe_encode, check_cosine_lr, check_label_smoothing_grad  # noqa: E402


# ---- Exercise 1 ----
def label_smoothing_grad(z, y, eps):
    """L = -sum_c q_c log p_c with sum_c q_c = 1, so dL/dz_j = p_j sum_c q_c - q_j = p_j - q_j; / N for the mean."""
    N, C = z.shape
    e = np.exp(z - z.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    q = np.full((N, C), eps / C)
    q[np.arange(N), y] += 1 - eps
    return (p - q) / N


# ---- Exercise 2 ----
def cosine_lr(step, lr, warmup, total):
    if step < warmup:
        return lr * step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)  # 0 at the end of the warmup, 1 at the last step
    return lr * max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


# ---- Exercise 3 ----
def bpe_encode(word, merges):
    rank = {pair: i for i, pair in enumerate(merges)}
    parts = list(word)
    while len(parts) > 1:
        pairs = [(rank.get((a, b), math.inf), (a, b)) for a, b in zip(parts, parts[1:])]
        best_rank, best = min(pairs)
        if best_rank == math.inf:
            break
        out, i = [], 0
        while i < len(parts):  # every occurrence, left to right
            if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
                out.append(parts[i] + parts[i + 1])
                i += 2
            else:
                out.append(parts[i])
                i += 1
        parts = out
    return parts


def _tokenizer():
    import tinypeft as tp

    return tp.AutoTokenizer.from_pretrained(os.path.join(ROOT, "tests", "fixtures", "models", "gpt2"))


TOKENIZER = _tokenizer()

EXERCISES = {
    "check_label_smoothing_grad": (label_smoothing_grad,),
    "check_cosine_lr": (cosine_lr,),
    "check_bpe_encode": (bpe_encode, TOKENIZER),
}


# ---- mistakes the checks must catch ----
def _smoothing_ignored(z, y, eps):  # the plain cross-entropy gradient p - y, as if eps were 0
    return label_smoothing_grad(z, y, 0.0)


def _cosine_over_all_steps(step, lr, warmup, total):  # the decay's progress counted from step 0, not from the warmup's end
    if step < warmup:
        return lr * step / max(1, warmup)
    return lr * max(0.0, 0.5 * (1.0 + math.cos(math.pi * step / total)))


def _longest_match(word, merges):  # greedy longest-prefix match over the vocabulary (WordPiece's rule, not BPE's)
    vocab = {a + b for a, b in merges} | set(word)
    out, i = [], 0
    while i < len(word):
        j = len(word)
        while j > i + 1 and word[i:j] not in vocab:
            j -= 1
        out.append(word[i:j])
        i = j
    return out


MISTAKES = {
    "check_label_smoothing_grad": (_smoothing_ignored,),
    "check_cosine_lr": (_cosine_over_all_steps,),
    "check_bpe_encode": (_longest_match, TOKENIZER),
}

if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
