"""Tokenizers from tokenizer.json, with the calling conventions of transformers' AutoTokenizer.

The work (normalise, pre-tokenise, BPE / WordPiece / Unigram, add [CLS]/[SEP], pad, truncate) is done by
the `tokenizers` library, the same Rust code transformers uses for its "fast" tokenizers; this file reads
the surrounding files and reproduces transformers' rules, so that

    tok = AutoTokenizer.from_pretrained("sentence-transformers/all-MiniLM-L6-v2")
    batch = tok(["a sentence", "another one"], padding=True, truncation=True, max_length=128, return_tensors="np")

gives the same input_ids / attention_mask / token_type_ids as transformers. The files of a model dir:

    tokenizer.json            the whole tokenizers pipeline (vocab, merges, normaliser, templates, added tokens)
    tokenizer_config.json     transformers' settings: special tokens, padding_side, model_max_length, ...
    special_tokens_map.json   older place for the special tokens (tokenizer_config wins where both say)

Rules worth knowing (transformers' own, which we copy):
- Padding and truncation are chosen per call. Settings stored inside tokenizer.json (MiniLM's pads every
  input to 128!) are switched off at load time.
- `max_length` alone (no padding, truncation left unset) turns truncation on ("longest_first").
- `truncation=True` without max_length truncates to model_max_length; so does padding="max_length".
- transformers 5 does not clean up spaces when decoding unless tokenizer_config asks for it
  (clean_up_tokenization_spaces); transformers 4 did by default for BERT.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

import numpy as np
from tokenizers import AddedToken, Tokenizer

from tinypeft.hub import resolve_model_dir
from tinypeft.models.configuration_utils import read_json_object
from tinypeft.utils.generic import AttributeDict


def bytes_to_unicode():
    """GPT-2's byte -> printable character table: printable Latin-1 bytes map to themselves, the other
    68 bytes (controls, space, ...) to chr(256 + k), so every byte string is spelled in visible text."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"

SPECIAL_TOKENS_ATTRIBUTES = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]
VERY_LARGE_INTEGER = int(1e30)  # transformers' "no limit" for model_max_length
LARGE_INTEGER = int(1e20)

# Tokenizer classes whose models take segment ids (transformers' model_input_names for them).
_TOKEN_TYPE_CLASSES = {"Bert", "Electra", "Albert", "Deberta", "DebertaV2", "XLNet", "Funnel", "LayoutLM",
                       "MobileBert", "SqueezeBert", "ConvBert", "RemBert", "Splinter", "RoFormer", "Lxmert",
                       "Tapas", "Nezha", "Realm"}

TextInput = Union[str, Sequence[str]]


class BatchEncoding(AttributeDict):
    """The tokenizer's output: a dict (input_ids, attention_mask, ...) whose keys also read as attributes."""


def _token_content(value) -> Optional[str]:
    # tokenizer_config writes a special token as "text" or as {"content": "text", "lstrip": ..., ...}.
    if isinstance(value, dict):
        return value.get("content")
    return value


def _write_json_atomic(path: Path, obj) -> None:
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def _read_json_object(file: Path) -> dict:
    """A tokenizer's JSON side file as a dict ({} when absent); a malformed one is a ValueError naming it."""
    return read_json_object(file, fix="restore it from the model") if file.is_file() else {}


def _check_config(config: dict, file: Path) -> dict:
    """The fields tinypeft reads must have their types: a wrong one is a ValueError naming it and the file."""
    def bad(key, want):
        raise ValueError(f"{file}: {key}={config[key]!r} should be {want}; restore it from the model")

    for key in SPECIAL_TOKENS_ATTRIBUTES:
        v = config.get(key)
        if v is not None and not isinstance(v, str) and not (isinstance(v, dict) and isinstance(v.get("content"), str)):
            bad(key, 'a string or {"content": string, ...}')
    if config.get("tokenizer_class") is not None and not isinstance(config["tokenizer_class"], str):
        bad("tokenizer_class", "a class name")
    names = config.get("model_input_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        bad("model_input_names", "a list of names")
    for key in ("padding_side", "truncation_side"):
        if key in config and config[key] not in ("left", "right"):
            bad(key, "'left' or 'right'")
    length = config.get("model_max_length")
    if length is not None and (isinstance(length, bool) or not isinstance(length, (int, float)) or not length > 0):
        bad("model_max_length", "a positive number")
    if "clean_up_tokenization_spaces" in config and not isinstance(config["clean_up_tokenization_spaces"], bool):
        bad("clean_up_tokenization_spaces", "true or false")
    return config


class PreTrainedTokenizer:
    """A tokenizers.Tokenizer plus transformers' conventions (special tokens, padding side, batching)."""

    def __init__(self, tokenizer: Tokenizer, *, padding_side: str = "right", truncation_side: str = "right",
                 model_max_length: int = VERY_LARGE_INTEGER, clean_up_tokenization_spaces: bool = False,
                 model_input_names: Optional[List[str]] = None, name_or_path: str = "",
                 init_config: Optional[dict] = None, **special_tokens):
        self._tokenizer = tokenizer
        self._tokenizer.no_padding()      # padding / truncation are chosen per call, as in transformers
        self._tokenizer.no_truncation()
        self.padding_side = padding_side
        self.truncation_side = truncation_side
        self.model_max_length = model_max_length
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces
        self.model_input_names = list(model_input_names or ["input_ids", "attention_mask"])
        self.name_or_path = name_or_path
        self.init_config = dict(init_config or {})
        self.pad_token_type_id = 0
        for attr in SPECIAL_TOKENS_ATTRIBUTES:
            setattr(self, "_" + attr, _token_content(special_tokens.pop(attr, None)))
        if special_tokens:
            raise TypeError(f"unexpected arguments: {sorted(special_tokens)}")

    # ------------------------------------------------------------------ loading and saving

    @classmethod
    def from_pretrained(cls, name_or_path: Union[str, os.PathLike], revision: Optional[str] = None, **kwargs):
        """Load from a model dir or a name found offline (see tinypeft.hub). kwargs override the config."""
        directory = resolve_model_dir(name_or_path, revision)
        path = directory / TOKENIZER_FILE
        if not path.is_file():
            raise OSError(f"no {TOKENIZER_FILE} in {directory}. tinypeft reads only 'fast' tokenizer files; make "
                          f"one with transformers: AutoTokenizer.from_pretrained(dir).save_pretrained(dir)")
        config = _check_config(_read_json_object(directory / TOKENIZER_CONFIG_FILE), directory / TOKENIZER_CONFIG_FILE)
        special_map = _check_config(_read_json_object(directory / SPECIAL_TOKENS_MAP_FILE),
                                    directory / SPECIAL_TOKENS_MAP_FILE)
        if (directory / CHAT_TEMPLATE_FILE).is_file():  # transformers 5 keeps the template in its own file
            config["chat_template"] = (directory / CHAT_TEMPLATE_FILE).read_text(encoding="utf-8")
        specials = {}
        for attr in SPECIAL_TOKENS_ATTRIBUTES:
            value = _token_content(config.get(attr)) or _token_content(special_map.get(attr))
            if attr in kwargs:
                value = kwargs.pop(attr)
            specials[attr] = value
        names = config.get("model_input_names")
        if names is None:
            cls_name = (config.get("tokenizer_class") or "").removesuffix("Fast").removesuffix("Tokenizer")
            names = ["input_ids", "attention_mask"]
            if cls_name in _TOKEN_TYPE_CLASSES:
                names = ["input_ids", "token_type_ids", "attention_mask"]
        settings = dict(
            padding_side=config.get("padding_side", "right"),
            truncation_side=config.get("truncation_side", "right"),
            model_max_length=config.get("model_max_length", VERY_LARGE_INTEGER),
            clean_up_tokenization_spaces=config.get("clean_up_tokenization_spaces", False),
            model_input_names=names,
        )
        settings.update(kwargs)
        try:
            backend = Tokenizer.from_file(str(path))
        except Exception as e:  # the tokenizers library raises a bare Exception for a malformed file
            raise ValueError(f"{path}: the tokenizers library cannot read it ({e}); restore it from the model") from None
        return cls(backend, name_or_path=str(name_or_path), init_config=config, **settings, **specials)

    def save_pretrained(self, save_directory: Union[str, os.PathLike]) -> List[str]:
        """Write tokenizer.json, tokenizer_config.json, special_tokens_map.json (each atomically)."""
        out = Path(save_directory)
        out.mkdir(parents=True, exist_ok=True)
        specials = {attr: getattr(self, attr) for attr in SPECIAL_TOKENS_ATTRIBUTES if getattr(self, attr) is not None}
        config = dict(self.init_config)
        config.update(specials)
        config.update(padding_side=self.padding_side, truncation_side=self.truncation_side,
                      model_max_length=self.model_max_length,
                      clean_up_tokenization_spaces=self.clean_up_tokenization_spaces,
                      model_input_names=self.model_input_names)
        config.setdefault("tokenizer_class", "PreTrainedTokenizerFast")
        config.pop("name_or_path", None)
        fd, tmp = tempfile.mkstemp(prefix="." + TOKENIZER_FILE + ".", dir=out)
        os.close(fd)
        self._tokenizer.save(tmp)
        os.replace(tmp, out / TOKENIZER_FILE)
        _write_json_atomic(out / TOKENIZER_CONFIG_FILE, config)
        _write_json_atomic(out / SPECIAL_TOKENS_MAP_FILE, specials)
        return [str(out / f) for f in (TOKENIZER_CONFIG_FILE, SPECIAL_TOKENS_MAP_FILE, TOKENIZER_FILE)]

    # ------------------------------------------------------------------ special tokens and vocabulary

    @property
    def backend_tokenizer(self) -> Tokenizer:
        return self._tokenizer

    @property
    def padding_side(self) -> str:
        return self._padding_side

    @padding_side.setter
    def padding_side(self, side: str):
        if side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', not {side!r}")
        self._padding_side = side

    @property
    def vocab_size(self) -> int:
        """Size of the base vocabulary, without tokens added on top (as in transformers)."""
        return self._tokenizer.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> Dict[str, int]:
        return self._tokenizer.get_vocab(with_added_tokens=True)

    def convert_tokens_to_ids(self, tokens: Union[str, Iterable[str]]):
        """Token(s) -> id(s); an unknown token gives unk_token_id (None if there is no unk token)."""
        if tokens is None:
            return None
        if isinstance(tokens, str):
            i = self._tokenizer.token_to_id(tokens)
            return i if i is not None else self.unk_token_id_or_none()
        return [self.convert_tokens_to_ids(t) for t in tokens]

    def unk_token_id_or_none(self) -> Optional[int]:
        return self._tokenizer.token_to_id(self._unk_token) if self._unk_token is not None else None

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        if isinstance(ids, (int, np.integer)):
            return self._tokenizer.id_to_token(int(ids))
        special = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._tokenizer.id_to_token(int(i)) for i in ids if int(i) not in special]

    def tokenize(self, text: str, pair: Optional[str] = None, add_special_tokens: bool = False) -> List[str]:
        return self._tokenizer.encode(text, pair, add_special_tokens=add_special_tokens).tokens

    @property
    def all_special_tokens(self) -> List[str]:
        seen = []
        for attr in SPECIAL_TOKENS_ATTRIBUTES:
            tok = getattr(self, attr)
            if tok is not None and tok not in seen:
                seen.append(tok)
        return seen

    @property
    def all_special_ids(self) -> List[int]:
        return self.convert_tokens_to_ids(self.all_special_tokens)

    def add_special_tokens(self, special_tokens: Dict[str, str]) -> int:
        """Set special tokens, e.g. {"pad_token": "<pad>"}, adding unknown ones to the vocabulary."""
        added = 0
        for attr, token in special_tokens.items():
            if attr not in SPECIAL_TOKENS_ATTRIBUTES:
                raise ValueError(f"{attr!r} is not one of {SPECIAL_TOKENS_ATTRIBUTES}")
            if self._tokenizer.token_to_id(token) is None:
                added += self._tokenizer.add_special_tokens([AddedToken(token, special=True, normalized=False)])
            setattr(self, attr, token)
        return added

    # ------------------------------------------------------------------ encoding

    def __call__(self, text: TextInput = None, text_pair: Optional[TextInput] = None, *,
                 text_target: Optional[TextInput] = None,
                 add_special_tokens: bool = True, padding: Union[bool, str] = False,
                 truncation: Union[bool, str, None] = None, max_length: Optional[int] = None,
                 pad_to_multiple_of: Optional[int] = None, padding_side: Optional[str] = None,
                 return_tensors: Optional[str] = None, return_token_type_ids: Optional[bool] = None,
                 return_attention_mask: Optional[bool] = None) -> BatchEncoding:
        """Encode one text (or pair) or a batch; returns input_ids, attention_mask (+ token_type_ids).

        text_target: texts whose input_ids become "labels" (seq2seq targets), encoded with the same settings.
        """
        opts = dict(add_special_tokens=add_special_tokens, padding=padding, truncation=truncation,
                    max_length=max_length, pad_to_multiple_of=pad_to_multiple_of, padding_side=padding_side,
                    return_tensors=return_tensors, return_token_type_ids=return_token_type_ids,
                    return_attention_mask=return_attention_mask)
        if text is None and text_target is None:
            raise ValueError("give text or text_target")
        encoded = self._encode(text, text_pair, **opts) if text is not None else BatchEncoding()
        if text_target is not None:
            target = self._encode(text_target, None, **opts)
            if text is None:
                return target
            encoded["labels"] = target["input_ids"]
        return encoded

    def _strategies(self, padding, truncation, max_length, pad_to_multiple_of):
        """transformers' _get_padding_truncation_strategies: -> (pad: None|'longest'|'max_length', truncate, max_length)."""
        if max_length is not None and padding is False and truncation is None:
            truncation = "longest_first"        # max_length alone turns truncation on
        if padding is True:
            padding = "longest"
        elif padding is False or padding == "do_not_pad":
            padding = None
        elif padding not in ("longest", "max_length"):
            raise ValueError(f"padding must be True, False, 'longest', 'max_length' or 'do_not_pad', not {padding!r}")
        if truncation is True:
            truncation = "longest_first"
        elif truncation in (False, None, "do_not_truncate"):
            truncation = None
        elif truncation not in ("longest_first", "only_first", "only_second"):
            raise ValueError(f"unknown truncation strategy {truncation!r}")
        if max_length is None:
            if padding == "max_length":
                if self.model_max_length > LARGE_INTEGER:
                    padding = None
                else:
                    max_length = self.model_max_length
            if truncation is not None:
                if self.model_max_length > LARGE_INTEGER:
                    truncation = None
                else:
                    max_length = self.model_max_length
        if padding is not None and (self.pad_token is None or self.pad_token_id is None):
            raise ValueError("Asking to pad but the tokenizer has no padding token: set one, e.g. "
                             "`tokenizer.pad_token = tokenizer.eos_token`.")
        if (truncation is not None and padding is not None and pad_to_multiple_of is not None
                and max_length is not None and max_length % pad_to_multiple_of != 0):
            raise ValueError(f"truncation length ({max_length}) is not a multiple of pad_to_multiple_of "
                             f"({pad_to_multiple_of})")
        return padding, truncation, max_length

    def _encode(self, text, text_pair, *, add_special_tokens, padding, truncation, max_length, pad_to_multiple_of,
                padding_side, return_tensors, return_token_type_ids, return_attention_mask) -> BatchEncoding:
        batched = isinstance(text, (list, tuple))
        if batched:
            if text_pair is not None and (not isinstance(text_pair, (list, tuple)) or len(text_pair) != len(text)):
                raise TypeError("when tokenizing a batch, text_pair must be a list of the same length as text")
            inputs = list(zip(text, text_pair)) if text_pair is not None else list(text)
        else:
            if text_pair is not None and not isinstance(text_pair, str):
                raise TypeError("text_pair must be a string when text is a string")
            inputs = [(text, text_pair) if text_pair is not None else text]
        pad, trunc, max_length = self._strategies(padding, truncation, max_length, pad_to_multiple_of)

        backend = self._tokenizer
        try:
            if trunc is not None:
                backend.enable_truncation(max_length, stride=0, strategy=trunc, direction=self.truncation_side)
            if pad is not None:
                backend.enable_padding(direction=padding_side or self.padding_side, pad_id=self.pad_token_id,
                                       pad_type_id=self.pad_token_type_id, pad_token=self.pad_token,
                                       length=max_length if pad == "max_length" else None,
                                       pad_to_multiple_of=pad_to_multiple_of)
            encodings = backend.encode_batch(inputs, add_special_tokens=add_special_tokens)
        finally:
            backend.no_truncation()
            backend.no_padding()

        if return_token_type_ids is None:
            return_token_type_ids = "token_type_ids" in self.model_input_names
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        out = BatchEncoding()
        out["input_ids"] = [e.ids for e in encodings]
        if return_token_type_ids:
            out["token_type_ids"] = [e.type_ids for e in encodings]
        if return_attention_mask:
            out["attention_mask"] = [e.attention_mask for e in encodings]
        if return_tensors is not None:
            # "pt" (what PyTorch code asks for) gives tinypeft Tensors, so such code runs unchanged
            if return_tensors not in ("np", "pt"):
                raise ValueError(f"return_tensors={return_tensors!r}: use 'np' (NumPy arrays) or 'pt' (tinypeft Tensors)")
            for key, rows in out.items():
                if len({len(r) for r in rows}) > 1:
                    raise ValueError(f"cannot make an array of {key} of different lengths: use padding=True")
                out[key] = np.array(rows, dtype=np.int64)
                if return_tensors == "pt":
                    from .tensor import Tensor

                    out[key] = Tensor(out[key])
        if not batched and return_tensors is None:  # with tensors, a single text is a batch of one (as transformers)
            for key in out:
                out[key] = out[key][0]
        return out

    def encode(self, text: str, text_pair: Optional[str] = None, add_special_tokens: bool = True, **kwargs) -> List[int]:
        return self(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)["input_ids"]

    # ------------------------------------------------------------------ chat templates

    @property
    def chat_template(self) -> Optional[str]:
        """The model's Jinja chat template (tokenizer_config.json, chat_template.jinja or GGUF metadata)."""
        return self.init_config.get("chat_template")

    @chat_template.setter
    def chat_template(self, template: Optional[str]):
        self.init_config["chat_template"] = template

    def apply_chat_template(self, conversation, add_generation_prompt: bool = False, tokenize: bool = True, **kwargs):
        """Render messages with the chat template, as transformers does; see tinypeft.chat_template."""
        from .chat_template import apply_chat_template

        return apply_chat_template(self, conversation, add_generation_prompt=add_generation_prompt,
                                   tokenize=tokenize, **kwargs)

    # ------------------------------------------------------------------ decoding

    def decode(self, token_ids, skip_special_tokens: bool = False,
               clean_up_tokenization_spaces: Optional[bool] = None) -> str:
        if isinstance(token_ids, (int, np.integer)):
            token_ids = [token_ids]
        ids = [int(i) for i in np.asarray(token_ids).reshape(-1)]
        text = self._tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        if clean_up_tokenization_spaces and type(self._tokenizer.model).__name__ != "BPE":
            # transformers skips this for BPE, where it would delete real spaces before punctuation.
            text = clean_up_tokenization(text)
        return text

    def batch_decode(self, sequences, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: Optional[bool] = None) -> List[str]:
        return [self.decode(s, skip_special_tokens, clean_up_tokenization_spaces) for s in sequences]

    def __repr__(self):
        return (f"{type(self).__name__}(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size}, "
                f"padding_side={self.padding_side!r}, special_tokens={self.all_special_tokens})")


def clean_up_tokenization(text: str) -> str:
    """Undo the spaces WordPiece decoding leaves before punctuation and English contractions."""
    for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                 (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(a, b)
    return text


def _special_token_property(attr):
    def get_token(self):
        return getattr(self, "_" + attr)

    def set_token(self, value):
        setattr(self, "_" + attr, _token_content(value))

    def get_id(self):
        token = getattr(self, "_" + attr)
        return None if token is None else self.convert_tokens_to_ids(token)

    def set_id(self, value):
        setattr(self, "_" + attr, None if value is None else self._tokenizer.id_to_token(int(value)))

    return property(get_token, set_token), property(get_id, set_id)


for _attr in SPECIAL_TOKENS_ATTRIBUTES:
    _tok_prop, _id_prop = _special_token_property(_attr)
    setattr(PreTrainedTokenizer, _attr, _tok_prop)
    setattr(PreTrainedTokenizer, _attr + "_id", _id_prop)


class AutoTokenizer:
    """`AutoTokenizer.from_pretrained(dir_or_name)`: every tokenizer here is a PreTrainedTokenizer."""

    @staticmethod
    def from_pretrained(name_or_path: Union[str, os.PathLike], revision: Optional[str] = None,
                        gguf_file: Optional[str] = None, **kwargs):
        from .gguf import find_gguf_file, load_gguf_tokenizer
        from .hub import resolve_model_dir_or_fetch

        directory = resolve_model_dir_or_fetch(name_or_path, revision)
        gguf_path = find_gguf_file(directory, gguf_file) if gguf_file or not (directory / TOKENIZER_FILE).is_file() else None
        if gguf_path is not None:  # the tokenizer inside a llama.cpp file
            return load_gguf_tokenizer(gguf_path, name_or_path=name_or_path, **kwargs)
        return PreTrainedTokenizer.from_pretrained(name_or_path, revision=revision, **kwargs)
