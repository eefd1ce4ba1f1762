"""generate(): greedy and sampled decoding with a key/value cache, for decoder-only and encoder-decoder models.

With the cache, each step feeds only the newest token: every layer appends that token's key and value
to the ones it kept from earlier steps, so a step costs O(T) instead of re-running all T tokens.
Batches are left-padded, so every row's next token lands in the same column; positions are counted
from the attention mask so padding does not shift them.
"""
import numpy as np

from ..autograd import no_grad
from ..creation import generator
from ..tensor import Tensor, as_array
from .masking import position_ids_from_mask


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def select_next_tokens(logits, do_sample, temperature=1.0, top_k=50, top_p=1.0, rng=None):
    """[B, V] float64 scores -> [B] token ids, with transformers' warpers applied in its order."""
    if not do_sample:
        return logits.argmax(-1)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 when do_sample=True, got {temperature}.")
    logits = logits / temperature
    if top_k and top_k < logits.shape[-1]:
        kth = np.sort(logits, axis=-1)[:, -top_k][:, None]
        logits = np.where(logits < kth, -np.inf, logits)
    if top_p < 1.0:
        # nucleus: keep the smallest set of top tokens whose probability reaches top_p
        order = np.argsort(logits, axis=-1)  # ascending
        sorted_probs = np.take_along_axis(_softmax(logits), order, axis=-1)
        remove_sorted = np.cumsum(sorted_probs, axis=-1) <= (1 - top_p)
        remove_sorted[:, -1] = False  # always keep the most likely token
        remove = np.zeros_like(remove_sorted)
        np.put_along_axis(remove, order, remove_sorted, axis=-1)
        logits = np.where(remove, -np.inf, logits)
    probs = _softmax(logits)
    rng = rng or generator()
    u = rng.random((probs.shape[0], 1))
    return np.minimum((np.cumsum(probs, axis=-1) < u).sum(-1), probs.shape[-1] - 1)


class GenerationMixin:
    @no_grad()
    def generate(self, input_ids=None, attention_mask=None, max_new_tokens=20, do_sample=False,
                 temperature=1.0, top_k=50, top_p=1.0, eos_token_id=None, pad_token_id=None,
                 use_cache=True, max_length=None, decoder_start_token_id=None, **model_kwargs):
        """Token ids [B, prompt + new] (decoder-only) or [B, 1 + new] (encoder-decoder), as a Tensor."""
        ids = as_array(input_ids)
        if ids is None or ids.ndim != 2:
            raise ValueError("generate() needs input_ids of shape [batch, length].")
        ids = ids.astype(np.int64)
        cfg = self.config
        eos = cfg.eos_token_id if eos_token_id is None else eos_token_id
        eos_set = set(eos if isinstance(eos, (list, tuple)) else [] if eos is None else [eos])
        pad = pad_token_id if pad_token_id is not None else cfg.pad_token_id
        if pad is None:
            pad = min(eos_set) if eos_set else 0
        mask = np.ones_like(ids) if attention_mask is None else as_array(attention_mask).astype(np.int64)
        if max_length is not None:
            max_new_tokens = max_length - (1 if cfg.is_encoder_decoder else ids.shape[1])
        if cfg.is_encoder_decoder:
            return self._generate_encoder_decoder(ids, mask, max_new_tokens, do_sample, temperature, top_k,
                                                  top_p, eos_set, pad, use_cache, decoder_start_token_id)

        B = ids.shape[0]
        finished = np.zeros(B, dtype=bool)
        past, cur = None, ids
        for _ in range(max_new_tokens):
            past_len = 0 if past is None else ids.shape[1] - cur.shape[1]
            pos = position_ids_from_mask(mask, past_len, cur.shape[1])
            out = self(input_ids=cur, attention_mask=mask, position_ids=pos, past_key_values=past,
                       use_cache=use_cache, **model_kwargs)
            scores = out.logits.data[:, -1, :].astype(np.float64)
            nxt = select_next_tokens(scores, do_sample, temperature, top_k, top_p)
            nxt = np.where(finished, pad, nxt)
            ids = np.concatenate([ids, nxt[:, None]], axis=1)
            mask = np.concatenate([mask, np.ones((B, 1), dtype=mask.dtype)], axis=1)
            finished |= np.isin(nxt, list(eos_set))
            if finished.all():
                break
            if use_cache:
                past, cur = out.past_key_values, nxt[:, None]
            else:
                cur = ids
        return Tensor(ids)

    def _generate_encoder_decoder(self, ids, mask, max_new_tokens, do_sample, temperature, top_k, top_p,
                                  eos_set, pad, use_cache, decoder_start_token_id):
        cfg = self.config
        start = decoder_start_token_id if decoder_start_token_id is not None else cfg.decoder_start_token_id
        if start is None:
            raise ValueError("generate(): set config.decoder_start_token_id (T5 uses the pad id, 0).")
        encoder_outputs = self.get_encoder()(input_ids=ids, attention_mask=mask)
        B = ids.shape[0]
        dec = np.full((B, 1), start, dtype=np.int64)
        finished = np.zeros(B, dtype=bool)
        past, cur = None, dec
        for _ in range(max_new_tokens):
            out = self(encoder_outputs=encoder_outputs, attention_mask=mask, decoder_input_ids=cur,
                       past_key_values=past, use_cache=use_cache)
            scores = out.logits.data[:, -1, :].astype(np.float64)
            nxt = np.where(finished, pad, select_next_tokens(scores, do_sample, temperature, top_k, top_p))
            dec = np.concatenate([dec, nxt[:, None]], axis=1)
            finished |= np.isin(nxt, list(eos_set))
            if finished.all():
                break
            past, cur = (out.past_key_values, nxt[:, None]) if use_cache else (None, dec)
        return Tensor(dec)
