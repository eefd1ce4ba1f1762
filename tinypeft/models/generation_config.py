"""GenerationConfig: generate()'s options, read from generation_config.json, as in transformers.

A model loaded with from_pretrained carries `model.generation_config`: the checkpoint's
generation_config.json when it has one, else the special tokens of config.json. generate() starts from it
and lets every keyword argument override one field for that call only:

    model.generation_config.repetition_penalty = 1.2      # from now on
    model.generate(**inputs, num_beams=4)                  # this call only

Fields tinypeft implements carry transformers' global defaults. `max_length` stays None unless set: then
generate() makes 20 new tokens (transformers' rule), where a set max_length counts the prompt too.
transformers options tinypeft does not implement are kept when a file sets them and refused by generate()
unless they hold their neutral value, so a setting is never silently ignored.
"""
import copy
import json
import numbers
import os
import tempfile
from pathlib import Path

from .configuration_utils import read_json_object

GENERATION_CONFIG_NAME = "generation_config.json"

# what tinypeft's generate() implements, with transformers' defaults (GenerationConfig._get_default_generation_params)
DEFAULTS = dict(
    max_length=None, max_new_tokens=None, min_length=0, min_new_tokens=None, early_stopping=False,
    stop_strings=None, do_sample=False, num_beams=1, use_cache=True, temperature=1.0, top_k=50, top_p=1.0,
    repetition_penalty=1.0, length_penalty=1.0, no_repeat_ngram_size=0, num_return_sequences=1,
    pad_token_id=None, bos_token_id=None, eos_token_id=None, decoder_start_token_id=None,
)

# transformers options tinypeft does not implement, with the values that mean "off"
UNSUPPORTED = dict(
    max_time=None, min_p=None, top_h=None, typical_p=1.0, epsilon_cutoff=0.0, eta_cutoff=0.0,
    encoder_repetition_penalty=1.0, encoder_no_repeat_ngram_size=0, bad_words_ids=None, force_words_ids=None,
    constraints=None, sequence_bias=None, renormalize_logits=False, forced_bos_token_id=None,
    forced_eos_token_id=None, remove_invalid_values=False, exponential_decay_length_penalty=None,
    suppress_tokens=None, begin_suppress_tokens=None, guidance_scale=None, watermarking_config=None,
    num_beam_groups=1, diversity_penalty=0.0, penalty_alpha=None, dola_layers=None, token_healing=False,
    low_memory=None, prompt_lookup_num_tokens=None, assistant_early_exit=None, use_mtp=None,
    output_scores=False, output_logits=False, return_dict_in_generate=False, output_attentions=False,
    output_hidden_states=False,
)

# fields a file may carry that change nothing here (bookkeeping, torch-only performance settings)
IGNORED = {
    "transformers_version", "_from_model_config", "_commit_hash", "cache_implementation", "cache_config",
    "max_cache_len", "compile_config", "disable_compile", "num_assistant_tokens", "num_assistant_tokens_schedule",
    "assistant_confidence_threshold", "assistant_lookbehind", "target_lookbehind", "is_assistant",
    "max_matching_ngram_size", "assistant_ensemble_weight", "speculation_type", "prefill_chunk_size",
    "continuous_batching_config",
}


class GenerationConfig:
    """generate()'s options as attributes; unknown keys from a file are kept as extra attributes."""

    def __init__(self, **kwargs):
        for key, value in DEFAULTS.items():
            setattr(self, key, copy.deepcopy(value))
        for key, value in kwargs.items():
            setattr(self, key, value)
        self.validate()

    # -- checks -------------------------------------------------------------------------------------------
    def validate(self):
        """Raise on values transformers refuses too; name the field and what it must be."""
        def fail(field, must):
            raise ValueError(f"GenerationConfig: {field} must be {must}, got {getattr(self, field)!r}.")

        if self.early_stopping not in (True, False, "never"):
            fail("early_stopping", "True, False or 'never'")
        if self.max_new_tokens is not None and not (_is_int(self.max_new_tokens) and self.max_new_tokens > 0):
            fail("max_new_tokens", "a positive integer")
        if self.max_length is not None and not (_is_int(self.max_length) and self.max_length > 0):
            fail("max_length", "a positive integer")
        for field in ("min_length", "no_repeat_ngram_size"):
            if not (_is_int(getattr(self, field)) and getattr(self, field) >= 0):
                fail(field, "a non-negative integer")
        if self.min_new_tokens is not None and not (_is_int(self.min_new_tokens) and self.min_new_tokens >= 0):
            fail("min_new_tokens", "a non-negative integer")
        if not (_is_int(self.num_beams) and self.num_beams >= 1):
            fail("num_beams", "an integer >= 1")
        if not (_is_int(self.num_return_sequences) and self.num_return_sequences >= 1):
            fail("num_return_sequences", "an integer >= 1")
        if not (_is_int(self.top_k) and self.top_k >= 0):
            fail("top_k", "an integer >= 0 (0 turns top-k filtering off)")
        if not (_is_number(self.top_p) and 0.0 <= self.top_p <= 1.0):
            fail("top_p", "a number in [0, 1]")
        if not _is_number(self.temperature) or (self.do_sample and not self.temperature > 0):
            fail("temperature", "a number > 0 when sampling (for greedy decoding set do_sample=False)")
        if not (_is_number(self.repetition_penalty) and self.repetition_penalty > 0):
            fail("repetition_penalty", "a number > 0 (1.0 is no penalty)")
        if not _is_number(self.length_penalty):
            fail("length_penalty", "a number")
        if self.num_return_sequences > 1:
            if self.num_beams == 1 and not self.do_sample:
                raise ValueError(
                    "Greedy decoding (do_sample=False, num_beams=1) makes one sequence per prompt: "
                    f"num_return_sequences={self.num_return_sequences} needs do_sample=True or num_beams >= "
                    f"{self.num_return_sequences}.")
            if self.num_beams > 1 and self.num_return_sequences > self.num_beams:
                raise ValueError(f"num_return_sequences ({self.num_return_sequences}) has to be at most num_beams "
                                 f"({self.num_beams}).")
        if self.stop_strings is not None:
            strings = [self.stop_strings] if isinstance(self.stop_strings, str) else self.stop_strings
            if not strings or not all(isinstance(s, str) and s for s in strings):
                fail("stop_strings", "a non-empty string or a list of non-empty strings")
        for field in ("pad_token_id", "bos_token_id", "decoder_start_token_id"):
            if getattr(self, field) is not None and not _is_int(getattr(self, field)):
                fail(field, "an integer token id or None")
        eos = self.eos_token_id
        if eos is not None and not (_is_int(eos) or (isinstance(eos, (list, tuple)) and all(map(_is_int, eos)))):
            fail("eos_token_id", "an integer token id, a list of them, or None")

    def check_supported(self):
        """Refuse a transformers option tinypeft does not implement when it is set to anything but "off"."""
        for key, off in UNSUPPORTED.items():
            value = getattr(self, key, off)
            if value != off and not (key == "guidance_scale" and value == 1.0):
                raise NotImplementedError(
                    f"generate(): {key}={value!r} is a transformers generation option tinypeft does not implement; "
                    f"leave it at {off!r} (model.generation_config.{key} = {off!r}).")

    # -- updates ------------------------------------------------------------------------------------------
    def is_field(self, key):
        return key in DEFAULTS or key in UNSUPPORTED

    def update(self, **kwargs):
        """Set the fields named in kwargs; return the keys that are not generation options, untouched."""
        unused = {k: v for k, v in kwargs.items() if not self.is_field(k)}
        for key, value in kwargs.items():
            if key not in unused:
                setattr(self, key, value)
        self.validate()
        return unused

    def eos_token_ids(self):
        """eos_token_id as a list (empty when unset)."""
        eos = self.eos_token_id
        return [] if eos is None else [int(e) for e in eos] if isinstance(eos, (list, tuple)) else [int(eos)]

    # -- files --------------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d):
        return cls(**{k: v for k, v in d.items() if k not in IGNORED})

    @classmethod
    def from_model_config(cls, config):
        """The special tokens (and any generation field) of a model's config.json. As transformers, every
        generation option the config sets is taken, also one tinypeft's generate() refuses (Whisper's older
        configs carry suppress_tokens, which Whisper's own generate() applies)."""
        d = config.to_dict() if hasattr(config, "to_dict") else dict(config)
        return cls(**{k: v for k, v in d.items() if (k in DEFAULTS or k in UNSUPPORTED) and v is not None})

    @classmethod
    def from_pretrained(cls, path, config=None):
        """generation_config.json in the folder `path`; without one, from the model config if given."""
        file = Path(path) / GENERATION_CONFIG_NAME
        if not file.is_file():
            if config is None:
                raise OSError(f"{path} has no {GENERATION_CONFIG_NAME}.")
            return cls.from_model_config(config)
        d = read_json_object(file, fix="fix or delete the file")
        try:
            return cls.from_dict(d)
        except ValueError as e:
            raise ValueError(f"{file}: {e}") from None

    def to_dict(self):
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if not k.startswith("_")}

    def to_diff_dict(self):
        """Only the fields that differ from the defaults, as transformers writes the file."""
        defaults = {**DEFAULTS, **UNSUPPORTED}
        return {k: v for k, v in self.to_dict().items() if k not in defaults or defaults[k] != v}

    def save_pretrained(self, save_directory):
        """Write generation_config.json atomically (a temporary file renamed over the old one)."""
        save_directory = Path(save_directory)
        save_directory.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_diff_dict(), indent=2, sort_keys=True) + "\n"
        fd, tmp = tempfile.mkstemp(dir=save_directory, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, save_directory / GENERATION_CONFIG_NAME)

    def __eq__(self, other):
        return isinstance(other, GenerationConfig) and self.to_diff_dict() == other.to_diff_dict()

    def __repr__(self):
        return f"GenerationConfig {json.dumps(self.to_diff_dict(), indent=2, sort_keys=True)}"


def _is_int(x):
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_number(x):
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


__all__ = ["GenerationConfig", "GENERATION_CONFIG_NAME"]
