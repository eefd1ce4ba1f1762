"""Stopping criteria: after each step, which rows are done (transformers' generation/stopping_criteria.py).

Each takes input_ids [B, T] (the new token included) and returns a bool [B]; a row is done when any
criterion says so. A done row stops growing: generate() fills it with the pad token until every row is done.
"""
import json

import numpy as np

from ..tokenization import bytes_to_unicode


class StoppingCriteria:
    def __call__(self, input_ids, scores=None):
        raise NotImplementedError


class StoppingCriteriaList(list):
    def __call__(self, input_ids, scores=None):
        done = np.zeros(input_ids.shape[0], dtype=bool)
        for criterion in self:
            done |= np.asarray(criterion(input_ids, scores), dtype=bool)
        return done

    @property
    def max_length(self):
        for criterion in self:
            if isinstance(criterion, MaxLengthCriteria):
                return criterion.max_length
        return None


class MaxLengthCriteria(StoppingCriteria):
    """Every row is done once the sequence (prompt included) has max_length tokens."""

    def __init__(self, max_length):
        self.max_length = max_length

    def __call__(self, input_ids, scores=None):
        return np.full(input_ids.shape[0], input_ids.shape[1] >= self.max_length)


class EosTokenCriteria(StoppingCriteria):
    """A row is done when its newest token is one of the end-of-sequence ids."""

    def __init__(self, eos_token_id):
        self.eos_token_id = np.atleast_1d(np.asarray(eos_token_id, dtype=np.int64))

    def __call__(self, input_ids, scores=None):
        return np.isin(input_ids[:, -1], self.eos_token_id)


class StopStringCriteria(StoppingCriteria):
    """A row is done when a stop string ends inside its newest token.

    Matched on the tokens' own text, so "stop" is caught as ["st", "op"], ["sto", "pper"] or ["las", "topper"]:
    the stop string must overlap the start of the newest token (stop[-i:] == newest[:i] for some i) and the
    tokens before it must spell the rest. A stop string that lies wholly in earlier tokens does not count
    (it was checked when it was made). These are transformers' rules; transformers turns them into
    precomputed tensor lookups so they compile, here they are plain string comparisons on the last few tokens.
    Byte-level (GPT-2 style) and byte-fallback vocabularies are compared as bytes, so a character split
    across tokens still matches.
    """

    def __init__(self, tokenizer, stop_strings):
        if isinstance(stop_strings, str):
            stop_strings = [stop_strings]
        self.stop_strings = tuple(stop_strings)
        self.tokenizer = tokenizer
        self.mode = _matching_mode(tokenizer)
        self._targets = tuple(s.encode("utf-8") for s in self.stop_strings) if self.mode else self.stop_strings
        self.maximum_token_len = max(len(s) for s in self._targets)  # at least one character per token
        self._cache = {}
        self._byte_decoder = {c: b for b, c in bytes_to_unicode().items()} if self.mode == "byte_level" else None
        self._prefix = None

    def token_text(self, token_id):
        """The text (bytes in the byte modes) token_id adds to a sequence, cached per id."""
        if token_id not in self._cache:
            self._cache[token_id] = self._token_text(token_id)
        return self._cache[token_id]

    def _token_text(self, token_id):
        token = self.tokenizer.convert_ids_to_tokens(int(token_id))
        if token is None:
            return b"" if self.mode else ""
        if self.mode == "byte_level" and all(c in self._byte_decoder for c in token):
            return bytes(self._byte_decoder[c] for c in token)
        if (self.mode == "byte_fallback" and len(token) == 6 and token.startswith("<0x") and token.endswith(">")
                and all(c in "0123456789abcdefABCDEF" for c in token[3:5])):
            return bytes([int(token[3:5], 16)])
        # decode behind a fixed prefix, so a decoder that strips a leading space (Metaspace) keeps it
        decoder = self.tokenizer.backend_tokenizer.decoder
        if decoder is None:
            text = token
        else:
            if self._prefix is None:
                ids = self.tokenizer("abcdef", add_special_tokens=False)["input_ids"]
                self._prefix = [self.tokenizer.convert_ids_to_tokens(int(i)) for i in ids]
            text = decoder.decode(self._prefix + [token])
            text = text[text.index("abcdef") + len("abcdef"):] if "abcdef" in text else token
        return text.encode("utf-8") if self.mode else text

    def __call__(self, input_ids, scores=None):
        tail = np.asarray(input_ids)[:, -self.maximum_token_len:]
        return np.array([self._row_matches([self.token_text(t) for t in row]) for row in tail.tolist()], dtype=bool)

    def _row_matches(self, texts):
        newest = texts[-1]
        for stop in self._targets:
            L = len(stop)
            for i in range(1, min(L, len(newest)) + 1):
                if newest[:i] != stop[L - i:]:
                    continue
                rest, j = stop[:L - i], len(texts) - 2  # what the earlier tokens must spell, from its end
                while rest and j >= 0:
                    tok = texts[j]
                    if len(tok) >= len(rest):
                        rest = rest[:0] if tok.endswith(rest) else None  # the token may run off the start
                    else:
                        rest = rest[:len(rest) - len(tok)] if rest.endswith(tok) else None
                    if rest is None:
                        break
                    j -= 1
                if rest is not None and not rest:
                    return True
        return False


def _matching_mode(tokenizer):
    """'byte_level', 'byte_fallback' or None: how the vocabulary's tokens map to text (as transformers decides)."""
    decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
    if decoder is None:
        return None
    if type(decoder).__name__ == "ByteLevel":
        return "byte_level"
    try:
        state = json.loads(decoder.__getstate__())
    except (AttributeError, TypeError, ValueError):
        return None

    def has(node, kind):
        if isinstance(node, dict):
            return node.get("type") == kind or any(has(v, kind) for v in node.values())
        return isinstance(node, list) and any(has(v, kind) for v in node)

    return "byte_fallback" if has(state, "ByteFallback") else "byte_level" if has(state, "ByteLevel") else None


__all__ = ["StoppingCriteria", "StoppingCriteriaList", "MaxLengthCriteria", "EosTokenCriteria", "StopStringCriteria"]
