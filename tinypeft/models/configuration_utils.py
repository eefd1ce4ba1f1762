"""PretrainedConfig: config.json as an object, with each architecture's defaults, like transformers'."""
import copy
import json
import math
import os
import tempfile
from pathlib import Path

from ..hub import resolve_model_dir

CONFIG_NAME = "config.json"

# generic names (resolved through each architecture's attribute_map) that must be positive whole numbers
POSITIVE_INTS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                 "intermediate_size", "max_position_embeddings", "ffn_dim", "d_ff", "num_decoder_layers", "n_inner",
                 "word_embed_proj_dim", "head_dim", "num_labels", "relative_attention_num_buckets")


def read_json_object(file, fix="restore it from the original model"):
    """A JSON file that must hold one object (config.json, adapter_config.json, generation_config.json, a
    tokenizer's side files); a malformed one is a ValueError naming the file and `fix`."""
    try:
        with open(file, encoding="utf-8") as f:
            d = json.load(f)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{file} is not valid JSON ({e}); {fix}") from None
    if not isinstance(d, dict):
        raise ValueError(f"{file} holds a JSON {type(d).__name__}, not an object; {fix}")
    return d


class PretrainedConfig:
    """Attributes come from config.json; a subclass's `defaults` fill what the file leaves out.

    `attribute_map` maps the generic names other code uses (hidden_size, num_hidden_layers, ...)
    to each architecture's own names (n_embd, n_layer, ...), as transformers does.
    """

    model_type = ""
    defaults = {}
    attribute_map = {}

    def __init__(self, **kwargs):
        values = {
            "name_or_path": "",
            "architectures": None,
            "tie_word_embeddings": True,
            "pad_token_id": None,
            "bos_token_id": None,
            "eos_token_id": None,
            "decoder_start_token_id": None,
            "is_encoder_decoder": False,
            "num_labels": None,
            "id2label": None,
            "label2id": None,
            "problem_type": None,
            "torch_dtype": None,
            "use_cache": True,
        }
        values.update(copy.deepcopy(self.defaults))
        values.update(kwargs)
        if values.get("id2label"):
            values["id2label"] = {int(k): v for k, v in values["id2label"].items()}
            values["num_labels"] = len(values["id2label"])
        elif values.get("num_labels") is None:
            values["num_labels"] = 2
        if not values.get("id2label"):
            values["id2label"] = {i: f"LABEL_{i}" for i in range(values["num_labels"])}
        if not values.get("label2id"):
            values["label2id"] = {v: k for k, v in values["id2label"].items()}
        values.pop("model_type", None)
        for k in values:
            if callable(getattr(type(self), k, None)) or k in ("defaults", "attribute_map"):
                raise ValueError(f"config key {k!r} would replace {type(self).__name__}.{k}; remove it from the config")
        for k, v in values.items():
            setattr(self, k, v)
        self.validate()

    def validate(self):
        """Refuse a config whose model could not work (no layers, heads that do not split the hidden size),
        at load time and naming the field, rather than a model that fails at its first forward."""
        def stored(name):
            key = self.attribute_map.get(name, name)
            return key, self.__dict__.get(key)

        for name in POSITIVE_INTS:
            key, value = stored(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ValueError(f"{key}={value!r}: must be a positive whole number; fix it in the config")
        (hidden_key, hidden), (heads_key, heads) = stored("hidden_size"), stored("num_attention_heads")
        if hidden and heads and stored("head_dim")[1] is None and hidden % heads:
            raise ValueError(f"{hidden_key}={hidden} is not divisible by {heads_key}={heads}: each head takes "
                             f"{hidden_key} / {heads_key} features; fix one of them in the config")
        kv_key, kv = stored("num_key_value_heads")
        if heads and kv and heads % kv:
            raise ValueError(f"{heads_key}={heads} is not divisible by {kv_key}={kv}: each key/value head serves "
                             f"a whole group of query heads; fix one of them in the config")
        for key, value in self.__dict__.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if ("dropout" in key or "pdrop" in key or key.endswith("_prob")) and not 0 <= value < 1:
                raise ValueError(f"{key}={value!r}: a dropout probability must be in [0, 1); fix it in the config")
            if ("eps" in key or "epsilon" in key) and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{key}={value!r}: must be a small positive number; fix it in the config")

    def __setattr__(self, key, value):
        super().__setattr__(self.attribute_map.get(key, key), value)

    def __getattr__(self, key):  # only called when normal lookup fails
        mapped = type(self).attribute_map.get(key)
        if mapped is not None:
            return getattr(self, mapped)
        raise AttributeError(f"{type(self).__name__} has no attribute {key!r}")

    def to_dict(self):
        out = {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "name_or_path"}
        out["model_type"] = self.model_type
        if out.get("id2label"):
            out["id2label"] = {str(k): v for k, v in out["id2label"].items()}
        return out

    def __repr__(self):
        return f"{type(self).__name__} {json.dumps(self.to_dict(), indent=2, sort_keys=True)}"

    @classmethod
    def from_dict(cls, d, **kwargs):
        d = dict(d)
        d.update(kwargs)
        return cls(**d)

    @classmethod
    def from_pretrained(cls, name_or_path, revision=None, **kwargs):
        path = resolve_model_dir(name_or_path, revision=revision)
        file = path / CONFIG_NAME
        if not file.is_file():
            raise OSError(f"{path} has no {CONFIG_NAME}: it is not a transformers-format model folder.")
        d = read_json_object(file)
        try:
            config = cls.from_dict(d, **kwargs)
        except (TypeError, ValueError, AttributeError) as e:
            raise ValueError(f"{file}: {e}") from None
        config.name_or_path = str(name_or_path)
        return config

    def save_pretrained(self, save_directory):
        save_directory = Path(save_directory)
        save_directory.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        fd, tmp = tempfile.mkstemp(dir=save_directory, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, save_directory / CONFIG_NAME)
