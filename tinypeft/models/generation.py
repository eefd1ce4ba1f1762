"""generate(): greedy, sampled and beam-search decoding with a key/value cache, as transformers' generate().

One call, three steps, the same as transformers (generation/utils.py):
1. Options: model.generation_config (from generation_config.json) with this call's keyword arguments on
   top. A keyword that is neither a generation option nor a model input is a TypeError naming it.
2. The prompt: left-padded rows (so every row's next token lands in the same column; positions are counted
   from the attention mask), each repeated num_beams or num_return_sequences times.
3. The loop: the model gives next-token scores, the logits processors adjust them (logits_process.py), a
   token is picked (argmax, a sample from tinypeft's generator, or the best beams: beam_search.py), the
   stopping criteria mark rows done (stopping_criteria.py), a streamer gets the new tokens (streamers.py).

With the cache, each step feeds only the newest token: every layer appends that token's key and value to
the ones it kept from earlier steps, so a step costs O(T) instead of re-running all T tokens.
"""
import inspect
import logging

import numpy as np

from ..autograd import no_grad
from ..backend import to_device, xp_of
from ..creation import generator
from ..tensor import Tensor, as_array
from .beam_search import beam_search
from .fast_decode import StaticCache, fast_decoder
from .generation_config import GenerationConfig
from .logits_process import (
    LogitsProcessorList, MinLengthLogitsProcessor, MinNewTokensLengthLogitsProcessor, NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper,
)
from .masking import position_ids_from_mask
from .modeling_utils import ModelOutput
from .stopping_criteria import EosTokenCriteria, MaxLengthCriteria, StoppingCriteriaList, StopStringCriteria

logger = logging.getLogger("tinypeft")

# inputs generate() passes on to the model (anything else that is not a generation option is refused)
MODEL_INPUTS = {"input_ids", "attention_mask", "token_type_ids"}
# transformers generate() arguments tinypeft does not implement
UNSUPPORTED_ARGUMENTS = {"prefix_allowed_tokens_fn", "synced_gpus", "assistant_model", "negative_prompt_ids",
                         "negative_prompt_attention_mask", "custom_generate", "assistant_tokenizer", "inputs_embeds",
                         "decoder_input_ids", "past_key_values", "encoder_outputs"}


class GenerationMixin:
    @property
    def generation_config(self):
        """The model's default generation options: generation_config.json, else config.json's special tokens."""
        gc = self.__dict__.get("_generation_config")
        if gc is None:
            gc = self.__dict__["_generation_config"] = GenerationConfig.from_model_config(self.config)
        return gc

    @generation_config.setter
    def generation_config(self, value):
        if not isinstance(value, GenerationConfig):
            raise TypeError(f"generation_config must be a GenerationConfig, not {type(value).__name__}.")
        self.__dict__["_generation_config"] = value

    @no_grad()
    def generate(self, inputs=None, generation_config=None, logits_processor=None, stopping_criteria=None,
                 streamer=None, **kwargs):
        """Token ids [N, prompt + new] (decoder-only) or [N, 1 + new] (encoder-decoder), as a Tensor.

        N is the batch size times num_return_sequences. Keyword arguments are generation options
        (GenerationConfig's fields: max_new_tokens, do_sample, num_beams, repetition_penalty, ...), model
        inputs (input_ids, attention_mask, token_type_ids) or `tokenizer` (needed by stop_strings).
        """
        gc, model_kwargs, tokenizer = self._prepare_generation_config(generation_config, kwargs)
        ids = as_array(inputs if inputs is not None else model_kwargs.pop("input_ids", None))
        if ids is None or ids.ndim != 2 or ids.dtype.kind not in "iu":
            raise ValueError("generate() needs input_ids: integer token ids of shape [batch, length].")
        if ids.shape[1] == 0:
            raise ValueError("generate() got an empty prompt (input_ids has length 0); give at least one token.")
        ids = ids.astype(np.int64)
        cfg = self.config
        eos = gc.eos_token_ids()
        pad = gc.pad_token_id if gc.pad_token_id is not None else (eos[0] if eos else None)
        mask = as_array(model_kwargs.pop("attention_mask", None))
        if mask is None:
            # the model's own eos ids count too: eos_token_id=[] for one call does not make a pad=eos token padding
            model_eos = self.generation_config.eos_token_ids() + GenerationConfig(
                eos_token_id=self.config.eos_token_id).eos_token_ids()
            mask = self._attention_mask_from_padding(ids, pad, eos + model_eos)
        elif mask.shape != ids.shape:
            raise ValueError(f"attention_mask has shape {mask.shape} but input_ids has shape {ids.shape}.")
        mask = mask.astype(np.int64)
        if not cfg.is_encoder_decoder and ids.shape[0] > 1 and (mask[:, -1] == 0).any():
            logger.warning(
                "A decoder-only architecture is being used, but right-padding was detected! For correct generation "
                "results, please set `padding_side='left'` when initializing the tokenizer.")
        if streamer is not None and gc.num_beams > 1:
            raise ValueError("streamer cannot be used with beam search: set num_beams=1 to stream.")
        expand = max(gc.num_beams, gc.num_return_sequences)
        B = ids.shape[0]

        if cfg.is_encoder_decoder:
            start = gc.decoder_start_token_id if gc.decoder_start_token_id is not None else gc.bos_token_id
            if start is None:
                raise ValueError("generate(): set generation_config.decoder_start_token_id (T5 uses the pad id, 0).")
            step = _Seq2SeqStep(self, ids, mask, expand, gc.use_cache)
            prompt = np.full((B * expand, 1), start, dtype=np.int64)
            pad_lengths = None  # transformers ignores no decoder padding for the repetition penalty
        else:
            prompt = np.repeat(ids, expand, axis=0)
            mask = np.repeat(mask, expand, axis=0)
            token_types = as_array(model_kwargs.pop("token_type_ids", None))
            token_types = None if token_types is None else np.repeat(token_types.astype(np.int64), expand, axis=0)
            pad_lengths = None if mask.all() else (mask != 0).argmax(axis=1)  # left padding of each row

        max_length, min_length = self._generated_lengths(gc, prompt.shape[1])
        if not cfg.is_encoder_decoder:
            step = _CausalStep(self, mask, token_types, gc.use_cache, max_length)
        processors = self._get_logits_processor(gc, prompt.shape[1], min_length, eos, pad_lengths, logits_processor)
        criteria = self._get_stopping_criteria(gc, max_length, eos, tokenizer, stopping_criteria)
        if streamer is not None:
            streamer.put(prompt)
        if gc.num_beams > 1:
            out = beam_search(step, prompt, processors, criteria, gc, eos, pad, max_length, rng=generator())
        else:
            out = self._sample(step, prompt, processors, criteria, gc.do_sample, pad, streamer)
        if streamer is not None:
            streamer.end()
        return Tensor(out)

    # -- preparation --------------------------------------------------------------------------------------
    def _prepare_generation_config(self, generation_config, kwargs):
        """(a copy of the options with kwargs applied, the model inputs, the tokenizer); unknown keys raise."""
        base = generation_config if generation_config is not None else self.generation_config
        if not isinstance(base, GenerationConfig):
            raise TypeError(f"generation_config must be a GenerationConfig, not {type(base).__name__}.")
        gc = GenerationConfig(**base.to_dict())
        tokenizer = kwargs.pop("tokenizer", None)
        for key in kwargs:
            if key in UNSUPPORTED_ARGUMENTS:
                raise NotImplementedError(f"generate(): the transformers argument {key!r} is not implemented in "
                                          f"tinypeft.")
        unknown = [k for k in gc.update(**{k: v for k, v in kwargs.items() if k not in MODEL_INPUTS})]
        if unknown:
            raise TypeError(f"generate() got an unexpected keyword argument {unknown[0]!r} (it is neither a "
                            "generation option of GenerationConfig nor an input of the model).")
        gc.check_supported()
        return gc, {k: v for k, v in kwargs.items() if k in MODEL_INPUTS}, tokenizer

    @staticmethod
    def _attention_mask_from_padding(ids, pad, eos):
        """Without a mask, pad tokens in the prompt are padding, unless pad is also eos (then nothing is)."""
        if pad is not None and (ids == pad).any() and pad not in eos:
            return (ids != pad).astype(np.int64)
        return np.ones_like(ids)

    def _generated_lengths(self, gc, input_len):
        """(max_length, min_length) counting the prompt, as transformers' _prepare_generated_length."""
        if gc.max_new_tokens is not None:
            max_length = gc.max_new_tokens + input_len
        elif gc.max_length is not None:
            max_length = gc.max_length
        else:  # neither set: 20 new tokens, within the model's positions
            max_length = 20 + input_len
            positions = getattr(self.config, "max_position_embeddings", None)
            if isinstance(positions, int):
                max_length = min(max_length, positions)
        if input_len >= max_length:
            name = "decoder_input_ids" if self.config.is_encoder_decoder else "input_ids"
            raise ValueError(f"Input length of {name} is {input_len}, but max_length is set to {max_length}: "
                             "nothing is left to generate. Set max_new_tokens instead.")
        min_length = gc.min_new_tokens + input_len if gc.min_new_tokens is not None else gc.min_length
        return max_length, min_length

    @staticmethod
    def _get_logits_processor(gc, input_len, min_length, eos, pad_lengths, extra):
        """transformers' order: penalties and bans, then the caller's processors, then the sampling warpers."""
        procs = LogitsProcessorList()
        if gc.repetition_penalty != 1.0:
            procs.append(RepetitionPenaltyLogitsProcessor(gc.repetition_penalty, prompt_ignore_length=pad_lengths))
        if gc.no_repeat_ngram_size > 0:
            procs.append(NoRepeatNGramLogitsProcessor(gc.no_repeat_ngram_size))
        if eos and min_length > 0:
            procs.append(MinLengthLogitsProcessor(min_length, eos))
        if eos and gc.min_new_tokens:
            procs.append(MinNewTokensLengthLogitsProcessor(input_len, gc.min_new_tokens, eos))
        procs.extend(extra or [])
        if gc.do_sample:
            # beam sampling keeps one token more than there are eos ids, so a beam can always go on
            keep = len(eos) + 1 if gc.num_beams > 1 and eos else (2 if gc.num_beams > 1 else 1)
            if gc.temperature != 1.0:
                procs.append(TemperatureLogitsWarper(gc.temperature))
            if gc.top_k:
                procs.append(TopKLogitsWarper(int(gc.top_k), min_tokens_to_keep=keep))
            if gc.top_p < 1.0:
                procs.append(TopPLogitsWarper(gc.top_p, min_tokens_to_keep=keep))
        return procs

    @staticmethod
    def _get_stopping_criteria(gc, max_length, eos, tokenizer, extra):
        criteria = StoppingCriteriaList([MaxLengthCriteria(max_length)])
        if gc.stop_strings is not None:
            if tokenizer is None:
                raise ValueError("generate(stop_strings=...) needs the model's tokenizer to read the tokens' text: "
                                 "pass tokenizer=tokenizer.")
            criteria.append(StopStringCriteria(tokenizer, gc.stop_strings))
        if eos:
            criteria.append(EosTokenCriteria(eos))
        criteria.extend(extra or [])
        return criteria

    # -- decoding -----------------------------------------------------------------------------------------
    @staticmethod
    def _sample(step, ids, processors, criteria, do_sample, pad, streamer):
        """Greedy or sampled decoding; a done row gets pad tokens when an eos id is what can end rows."""
        pad_done_rows = any(isinstance(c, EosTokenCriteria) for c in criteria)
        unfinished = np.ones(ids.shape[0], dtype=bool)
        while True:
            scores = processors(ids, step(ids))
            nxt = sample_next_tokens(scores, generator()) if do_sample else scores.argmax(-1)
            if pad_done_rows:
                nxt = np.where(unfinished, nxt, pad)
            ids = np.concatenate([ids, nxt[:, None]], axis=1)
            unfinished &= ~criteria(ids)
            if streamer is not None:
                streamer.put(nxt)
            if not unfinished.any():
                return ids


def sample_next_tokens(scores, rng):
    """[N, V] processed scores -> [N] ids drawn from softmax(scores) by inverse CDF with tinypeft's generator."""
    s = scores.astype(np.float64)
    p = np.exp(s - s.max(-1, keepdims=True))  # filtered tokens (-inf) get probability 0
    cdf = np.cumsum(p, axis=-1)
    u = rng.random((s.shape[0], 1)) * cdf[:, -1:]
    return (cdf < u).sum(-1)  # the first index whose cdf reaches u: never a zero-probability token


class _CausalStep:
    """Next-token logits of a decoder-only model: the whole prompt first, then only the new tokens (cache).

    The prompt goes through the modules; with the cache on, later tokens go through fast_decode's plain
    NumPy decoder when the model has one (a preallocated cache written in place), else the modules again.
    """

    def __init__(self, model, mask, token_types, use_cache, max_length):
        self.model, self.mask, self.token_types, self.use_cache = model, mask, token_types, use_cache
        self.past, self.cached = None, 0  # cached: how many columns of ids the cache holds
        self.fast = fast_decoder(model) if use_cache and token_types is None else None
        self.static, self.max_length = None, max_length
        # only the last position's logits are used: a model that can skip the others' head product is asked to
        forward = getattr(model, "forward", None)  # a prompt-learning wrapper is only callable: it passes
        takes_keep = forward is not None and "logits_to_keep" in inspect.signature(forward).parameters
        self.keep = {"logits_to_keep": 1} if takes_keep else {}

    def __call__(self, ids):
        """ids [N, T] -> float32 logits [N, V] for position T."""
        N, T = ids.shape
        if self.mask.shape[1] < T:  # generated tokens are real tokens
            self.mask = np.concatenate([self.mask, np.ones((N, T - self.mask.shape[1]), np.int64)], axis=1)
        if self.fast is not None and self.past is not None and T == self.cached + 1:
            return self._fast_step(ids)
        start = self.cached if self.use_cache else 0
        kwargs = {}
        if self.token_types is not None:  # a new token takes the type of the token before it
            grow = T - self.token_types.shape[1]
            self.token_types = np.concatenate([self.token_types, np.repeat(self.token_types[:, -1:], grow, 1)], 1)
            kwargs["token_type_ids"] = self.token_types[:, start:]
        out = self.model(input_ids=ids[:, start:], attention_mask=self.mask,
                         position_ids=position_ids_from_mask(self.mask, start, T - start),
                         past_key_values=self.past, use_cache=self.use_cache, **self.keep, **kwargs)
        if self.use_cache:
            self.past, self.cached = out.past_key_values, T
        return np.array(to_device(out.logits.data[:, -1, :], "cpu"), dtype=np.float32)

    def _fast_step(self, ids):
        if self.static is None:
            self.static = StaticCache(self.past, self.max_length)
        mask = self.mask.astype(bool)
        logits = self.fast(ids[:, -1], mask.sum(1) - 1, mask, self.static)  # the new token's position, keys
        self.static.length += 1
        self.cached += 1
        return np.asarray(logits, dtype=np.float32)

    def reorder(self, rows):
        """Beam search: row i of the cache becomes the old row rows[i]."""
        if self.static is not None:
            self.static.reorder(rows)
        else:
            self.past = _reorder_cache(self.past, rows)


class _Seq2SeqStep:
    """Next-token logits of an encoder-decoder model: the encoder runs once, the decoder one token a step."""

    def __init__(self, model, ids, mask, expand, use_cache):
        encoded = model.get_encoder()(input_ids=ids, attention_mask=mask)
        hidden = encoded["last_hidden_state"].data  # on the model's device
        hidden = xp_of(hidden).repeat(hidden, expand, axis=0)  # [B * expand, S, D]
        self.encoder_outputs = ModelOutput(last_hidden_state=Tensor(hidden))
        self.model, self.mask, self.use_cache = model, np.repeat(mask, expand, axis=0), use_cache
        self.past, self.cached = None, 0

    def __call__(self, dec_ids):
        start = self.cached if self.use_cache else 0
        out = self.model(encoder_outputs=self.encoder_outputs, attention_mask=self.mask,
                         decoder_input_ids=dec_ids[:, start:], past_key_values=self.past, use_cache=self.use_cache)
        if self.use_cache:
            self.past, self.cached = out.past_key_values, dec_ids.shape[1]
        return np.array(to_device(out.logits.data[:, -1, :], "cpu"), dtype=np.float32)

    def reorder(self, rows):
        self.past = _reorder_cache(self.past, rows)


def _reorder_cache(past, rows):
    if past is None:
        return None
    return tuple(tuple(Tensor(t.data[xp_of(t.data).asarray(rows)]) for t in layer) for layer in past)


__all__ = ["GenerationMixin", "GenerationConfig", "sample_next_tokens"]
