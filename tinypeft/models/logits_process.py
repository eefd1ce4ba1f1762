"""Logits processors: each step, generate() passes the next-token scores through a list of these.

Each takes (input_ids [B, T] int64, scores [B, V] float32) and returns new scores [B, V]; the names,
arguments and rules are transformers' (generation/logits_process.py), so a setting means the same in both.
generate() applies them in transformers' order: the processors (repetition penalty, n-gram ban, minimum
length) first, then, only when sampling, the warpers: temperature, then top-k, then top-p.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


class LogitsProcessor:
    def __call__(self, input_ids, scores):
        raise NotImplementedError


class LogitsProcessorList(list):
    """Apply each processor in order."""

    def __call__(self, input_ids, scores):
        for processor in self:
            scores = processor(input_ids, scores)
        return scores


def _eos_mask(eos_token_id, vocab_size):
    eos = np.atleast_1d(np.asarray(eos_token_id, dtype=np.int64))
    return np.isin(np.arange(vocab_size), eos)  # [V]


class MinLengthLogitsProcessor(LogitsProcessor):
    """No eos (score -inf) while the whole sequence, prompt included, is shorter than min_length."""

    def __init__(self, min_length, eos_token_id):
        if not isinstance(min_length, int) or min_length < 0:
            raise ValueError(f"min_length has to be a non-negative integer, but is {min_length!r}")
        self.min_length, self.eos_token_id = min_length, eos_token_id

    def __call__(self, input_ids, scores):
        if input_ids.shape[-1] < self.min_length:
            return np.where(_eos_mask(self.eos_token_id, scores.shape[-1]), -np.inf, scores).astype(scores.dtype)
        return scores


class MinNewTokensLengthLogitsProcessor(LogitsProcessor):
    """No eos while fewer than min_new_tokens tokens follow the first prompt_length_to_skip."""

    def __init__(self, prompt_length_to_skip, min_new_tokens, eos_token_id):
        for name, value in (("prompt_length_to_skip", prompt_length_to_skip), ("min_new_tokens", min_new_tokens)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} has to be a non-negative integer, but is {value!r}")
        self.prompt_length_to_skip, self.min_new_tokens, self.eos_token_id = (
            prompt_length_to_skip, min_new_tokens, eos_token_id)

    def __call__(self, input_ids, scores):
        if input_ids.shape[-1] - self.prompt_length_to_skip < self.min_new_tokens:
            return np.where(_eos_mask(self.eos_token_id, scores.shape[-1]), -np.inf, scores).astype(scores.dtype)
        return scores


class TemperatureLogitsWarper(LogitsProcessor):
    """scores / temperature: below 1 sharpens the distribution, above 1 flattens it."""

    def __init__(self, temperature):
        if not (isinstance(temperature, (int, float)) and temperature > 0):
            raise ValueError(f"temperature has to be a strictly positive number, but is {temperature!r}; "
                             "for greedy decoding set do_sample=False.")
        self.temperature = float(temperature)

    def __call__(self, input_ids, scores):
        return scores / np.float32(self.temperature) if scores.dtype == np.float32 else scores / self.temperature


class RepetitionPenaltyLogitsProcessor(LogitsProcessor):
    """Every token already in input_ids: a positive score divided by penalty, a negative one multiplied by it.

    (Keskar et al., 2019, CTRL.) Either way the token becomes less likely for penalty > 1. A token counts
    once however often it occurs. prompt_ignore_length ([B] or an int) skips the first columns of each row:
    generate() passes the left padding there, so pad tokens are not penalised.
    """

    def __init__(self, penalty, prompt_ignore_length=None):
        if not (isinstance(penalty, (int, float)) and penalty > 0):
            raise ValueError(f"penalty has to be a strictly positive number, but is {penalty!r}")
        self.penalty = float(penalty)
        self.prompt_ignore_length = prompt_ignore_length

    def __call__(self, input_ids, scores):
        B, V = scores.shape
        ids = np.asarray(input_ids, dtype=np.int64)
        if self.prompt_ignore_length is not None:
            skip = np.broadcast_to(np.asarray(self.prompt_ignore_length), (B,))
            ids = np.where(np.arange(ids.shape[1])[None, :] < skip[:, None], V, ids)  # V: a dummy column
        ids = np.minimum(ids, V)
        padded = np.concatenate([scores, np.zeros((B, 1), scores.dtype)], axis=1)  # [B, V + 1]
        seen = np.take_along_axis(padded, ids, axis=1)
        penalty = scores.dtype.type(self.penalty)
        np.put_along_axis(padded, ids, np.where(seen < 0, seen * penalty, seen / penalty), axis=1)
        return padded[:, :V]


class TopKLogitsWarper(LogitsProcessor):
    """Keep the top_k highest scores (and any tied with the k-th); the rest become filter_value."""

    def __init__(self, top_k, filter_value=-np.inf, min_tokens_to_keep=1):
        if not isinstance(top_k, int) or top_k <= 0:
            raise ValueError(f"top_k has to be a strictly positive integer, but is {top_k!r}")
        self.top_k = max(top_k, min_tokens_to_keep)
        self.filter_value = filter_value

    def __call__(self, input_ids, scores):
        V = scores.shape[-1]
        k = min(self.top_k, V)
        kth = np.partition(scores, V - k, axis=-1)[:, V - k: V - k + 1]  # [B, 1]: the k-th largest
        return np.where(scores < kth, scores.dtype.type(self.filter_value), scores)


class TopPLogitsWarper(LogitsProcessor):
    """Nucleus sampling (Holtzman et al., 2019): keep the most likely tokens until their probability reaches top_p.

    Sorted ascending, a token is removed when the probability of it and everything below it is <= 1 - top_p;
    the min_tokens_to_keep most likely tokens always stay.
    """

    def __init__(self, top_p, filter_value=-np.inf, min_tokens_to_keep=1):
        top_p = float(top_p)
        if top_p < 0 or top_p > 1.0:
            raise ValueError(f"top_p has to be a float in [0, 1], but is {top_p}")
        if not isinstance(min_tokens_to_keep, int) or min_tokens_to_keep < 1:
            raise ValueError(f"min_tokens_to_keep has to be a positive integer, but is {min_tokens_to_keep!r}")
        self.top_p, self.filter_value, self.min_tokens_to_keep = top_p, filter_value, min_tokens_to_keep

    def __call__(self, input_ids, scores):
        order = np.argsort(scores, axis=-1, kind="stable")  # ascending
        sorted_scores = np.take_along_axis(scores, order, axis=-1)
        e = np.exp(sorted_scores - sorted_scores[:, -1:])
        cumulative = np.cumsum(e / e.sum(-1, keepdims=True), axis=-1)
        remove_sorted = cumulative <= (1 - self.top_p)
        remove_sorted[:, -self.min_tokens_to_keep:] = False
        remove = np.empty_like(remove_sorted)
        np.put_along_axis(remove, order, remove_sorted, axis=-1)
        return np.where(remove, scores.dtype.type(self.filter_value), scores)


class NoRepeatNGramLogitsProcessor(LogitsProcessor):
    """Ban any token that would repeat an n-gram already in the row (Paulus et al., 2017).

    The last n-1 tokens are the prefix of the next n-gram; every earlier window of n tokens that starts with
    that prefix bans its last token. The whole row counts, prompt (and padding) included, as in transformers.
    """

    def __init__(self, ngram_size):
        if not isinstance(ngram_size, int) or ngram_size <= 0:
            raise ValueError(f"ngram_size has to be a strictly positive integer, but is {ngram_size!r}")
        self.ngram_size = ngram_size

    def __call__(self, input_ids, scores):
        n = self.ngram_size
        T = input_ids.shape[-1]
        if T < n:
            return scores
        prefix = input_ids[:, T + 1 - n:]  # [B, n - 1]
        windows = sliding_window_view(input_ids, n, axis=1)  # [B, T - n + 1, n]
        matches = (windows[..., :-1] == prefix[:, None, :]).all(-1)  # [B, T - n + 1]
        banned = np.zeros(scores.shape, dtype=bool)
        rows, cols = np.nonzero(matches)
        tokens = windows[rows, cols, -1]
        keep = tokens < scores.shape[-1]
        banned[rows[keep], tokens[keep]] = True
        return np.where(banned, scores.dtype.type(-np.inf), scores)


__all__ = [
    "LogitsProcessor", "LogitsProcessorList", "MinLengthLogitsProcessor", "MinNewTokensLengthLogitsProcessor",
    "TemperatureLogitsWarper", "RepetitionPenaltyLogitsProcessor", "TopKLogitsWarper", "TopPLogitsWarper",
    "NoRepeatNGramLogitsProcessor",
]
