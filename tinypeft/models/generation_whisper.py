"""Whisper's generate(): the prompt of special tokens, suppressed tokens, greedy decoding with a KV cache.

Whisper's decoder is told what to do by the first tokens it reads (transformers' short-form path):

    <|startoftranscript|> <|lang|> <|transcribe|> or <|translate|> <|notimestamps|>   then the text, then <|endoftext|>

- decoder_start_token_id opens the prompt;
- the language: `language=` ("en", "english" or "<|en|>"), else generation_config.forced_decoder_ids, else
  (a multilingual model, lang_to_id in generation_config.json) detected per row: one decoder step from the
  start token, argmax over the language tokens only;
- the task: `task=`, else forced_decoder_ids, else "transcribe" when a language was given;
- <|notimestamps|> (no_timestamps_token_id), since timestamps are not predicted here.
While decoding, suppress_tokens are never produced, and begin_suppress_tokens (a blank, <|endoftext|>) not
as the first text token. generation_config.max_length counts new tokens on top of the prompt.
Only 30-second (short-form) input, greedy, without timestamps: the rest raises NotImplementedError.
"""
from types import SimpleNamespace

import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor, as_array
from .generation_config import GenerationConfig

TASK_IDS = ("translate", "transcribe")
# the few language names people type most; any code in lang_to_id ("<|xx|>") works as "xx" or "<|xx|>"
LANGUAGE_NAMES = {"english": "en", "french": "fr", "german": "de", "spanish": "es", "chinese": "zh",
                  "japanese": "ja", "italian": "it", "portuguese": "pt", "russian": "ru", "dutch": "nl"}


def _whisper_fields(gc):
    """Whisper's own generation_config.json fields (None where the file has none): lang_to_id, task_to_id,
    no_timestamps_token_id, is_multilingual, forced_decoder_ids, suppress_tokens, begin_suppress_tokens."""
    names = ("lang_to_id", "task_to_id", "no_timestamps_token_id", "is_multilingual", "forced_decoder_ids",
             "suppress_tokens", "begin_suppress_tokens")
    return SimpleNamespace(**{name: getattr(gc, name, None) for name in names})


class WhisperGenerationMixin:
    # from_pretrained loads generation_config.json into the shared GenerationConfig (and save_pretrained writes
    # it); Whisper's own fields (lang_to_id, task_to_id, no_timestamps_token_id, is_multilingual,
    # forced_decoder_ids) ride along as extra attributes; _whisper_fields reads them, None where absent.
    generation_config = None

    def _generation_config(self):
        if self.generation_config is not None:
            return self.generation_config
        return GenerationConfig.from_model_config(self.config)

    # -- the prompt -----------------------------------------------------------------------------------------
    def _language_id(self, language, gc):
        w = _whisper_fields(gc)
        if w.lang_to_id is None:
            raise ValueError("language= needs generation_config.lang_to_id (a multilingual Whisper's "
                             "generation_config.json); this model has none.")
        lang = language.lower()
        token = lang if lang.startswith("<|") else f"<|{LANGUAGE_NAMES.get(lang, lang)}|>"
        if token not in w.lang_to_id:
            raise ValueError(f"Unsupported language {language!r}: this model knows {sorted(w.lang_to_id)}.")
        return w.lang_to_id[token]

    @no_grad()
    def detect_language(self, input_features=None, encoder_outputs=None, generation_config=None):
        """[B] language token ids: the most likely language token after decoder_start_token_id."""
        gc = generation_config or self._generation_config()
        w = _whisper_fields(gc)
        if encoder_outputs is None:
            encoder_outputs = self.get_encoder()(input_features)
        B = encoder_outputs["last_hidden_state"].shape[0]
        start = np.full((B, 1), gc.decoder_start_token_id, dtype=np.int64)
        logits = self(encoder_outputs=encoder_outputs, decoder_input_ids=start).logits.data[:, -1].astype(np.float64)
        allowed = np.full(logits.shape[-1], -np.inf)
        allowed[list(w.lang_to_id.values())] = 0.0
        return (logits + allowed).argmax(-1)

    def _init_tokens(self, gc, B, language, task, encoder_outputs):
        """[B, n] prompt token ids, built as transformers' _retrieve_init_tokens does for short-form audio."""
        w = _whisper_fields(gc)
        init = [gc.decoder_start_token_id]
        if task is None and language is None:
            forced = w.forced_decoder_ids or getattr(self.config, "forced_decoder_ids", None)
            if forced:  # [[1, lang or None], [2, task], [3, notimestamps]]: consecutive positions from 1
                forced = [list(p) for p in forced]
                i = 1
                while forced and forced[0][0] == i:
                    init.append(forced.pop(0)[1])
                    i += 1
                if forced:
                    raise ValueError(f"forced_decoder_ids {forced} do not follow Whisper's prompt pattern "
                                     "(positions 1, 2, 3, ... without gaps).")
        rows = [list(init) for _ in range(B)]
        lang_ids = None
        if language is not None:
            langs = list(language) if isinstance(language, (list, tuple)) else [language] * B
            if len(langs) != B:
                raise ValueError(f"language= has {len(langs)} entries for a batch of {B}.")
            lang_ids = [self._language_id(lang, gc) for lang in langs]
        elif w.lang_to_id is not None and (len(init) <= 1 or init[1] is None):
            lang_ids = self.detect_language(encoder_outputs=encoder_outputs, generation_config=gc).tolist()
        for r in range(B):
            if lang_ids is not None:
                if len(rows[r]) > 1:
                    rows[r][1] = lang_ids[r]
                else:
                    rows[r].append(lang_ids[r])
            if task is not None:
                if task not in TASK_IDS or w.task_to_id is None:
                    raise ValueError(f"task must be one of {TASK_IDS} and the model's generation_config.json must "
                                     f"have task_to_id; got task={task!r}.")
                rows[r].append(w.task_to_id[task])
            elif language is not None and w.task_to_id is not None:
                if not any(t in rows[r] for t in w.task_to_id.values()):
                    rows[r].append(w.task_to_id["transcribe"])
            if w.no_timestamps_token_id is not None and rows[r][-1] != w.no_timestamps_token_id:
                rows[r].append(w.no_timestamps_token_id)
            rows[r] = [t for t in rows[r] if t is not None]
        return np.array(rows, dtype=np.int64)

    # -- decoding -------------------------------------------------------------------------------------------
    @no_grad()
    def generate(self, input_features=None, generation_config=None, return_timestamps=None, task=None,
                 language=None, is_multilingual=None, attention_mask=None, max_new_tokens=None, max_length=None,
                 num_beams=1, do_sample=False, use_cache=True, encoder_outputs=None, **kwargs):
        """The new token ids [B, new], without the prompt (as transformers' short-form generate returns them).

        attention_mask is accepted and unused, as in transformers' short-form path (30-second features have
        no padding to mask)."""
        if return_timestamps:
            raise NotImplementedError("generate(return_timestamps=True): timestamp prediction is not implemented.")
        if num_beams != 1 or do_sample:
            raise NotImplementedError("Whisper's generate() in tinypeft is greedy only (num_beams=1, do_sample=False).")
        if kwargs:
            raise TypeError(f"generate() got arguments it does not support: {sorted(kwargs)}.")
        gc = generation_config or self._generation_config()
        w = _whisper_fields(gc)
        if is_multilingual is False or w.is_multilingual is False:
            if task is not None or language is not None:
                raise ValueError("Cannot specify task or language for an English-only model.")
        if encoder_outputs is None:
            feats = as_array(input_features)
            if feats is None:
                raise ValueError("generate() needs input_features [batch, num_mel_bins, frames] (or encoder_outputs).")
            frames = self.config.max_source_positions * 2
            if feats.ndim == 3 and feats.shape[-1] > frames:
                raise NotImplementedError(
                    f"input_features have {feats.shape[-1]} frames, more than {frames} (30 s): long-form "
                    "transcription is not implemented. Cut the audio into 30-second pieces.")
            encoder_outputs = self.get_encoder()(Tensor(feats.astype(self.proj_out.weight.dtype, copy=False)))
        enc = encoder_outputs["last_hidden_state"]
        B = enc.shape[0]
        prompt = self._init_tokens(gc, B, language, task, encoder_outputs)
        n_init = prompt.shape[1]
        limit = self.config.max_target_positions
        if max_new_tokens is None:
            if max_length is None:
                max_length = gc.max_length if gc.max_length is not None else 20
            # transformers counts the prompt on top of max_length (Whisper's prompt is "previous context")
            max_new_tokens = min(max_length + min(limit // 2 - 1, n_init), limit) - n_init
        elif max_new_tokens + n_init > limit:
            raise ValueError(f"The prompt ({n_init} tokens) plus max_new_tokens ({max_new_tokens}) exceeds "
                             f"max_target_positions ({limit}). Ask for fewer tokens.")

        V = self.config.vocab_size
        suppress = np.zeros(V, dtype=bool)
        suppress[[t for t in (w.suppress_tokens or []) if t < V]] = True
        begin_suppress = np.zeros(V, dtype=bool)
        begin_suppress[[t for t in (w.begin_suppress_tokens or []) if t < V]] = True
        eos = gc.eos_token_id
        eos_set = set(eos if isinstance(eos, (list, tuple)) else [] if eos is None else [eos])
        pad = gc.pad_token_id if gc.pad_token_id is not None else (min(eos_set) if eos_set else 0)

        ids, cur, past = prompt, prompt, None
        finished = np.zeros(B, dtype=bool)
        for _ in range(max(max_new_tokens, 0)):
            out = self(encoder_outputs=encoder_outputs, decoder_input_ids=cur, past_key_values=past,
                       use_cache=use_cache)
            scores = out.logits.data[:, -1, :].astype(np.float64)  # [B, V]
            scores[:, suppress] = -np.inf
            if ids.shape[1] == n_init:
                scores[:, begin_suppress] = -np.inf
            nxt = np.where(finished, pad, scores.argmax(-1))
            ids = np.concatenate([ids, nxt[:, None]], axis=1)
            finished |= np.isin(nxt, list(eos_set))
            if finished.all():
                break
            past, cur = (out.past_key_values, nxt[:, None]) if use_cache else (None, ids)
        return Tensor(ids[:, n_init:])
