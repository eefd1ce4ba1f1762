"""PretrainedConfig: config.json as an object, with each architecture's defaults, like transformers'."""
import copy
import json
import os
import tempfile
from pathlib import Path

from ..hub import resolve_model_dir

CONFIG_NAME = "config.json"


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
        for k, v in values.items():
            setattr(self, k, v)

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
        with open(file) as f:
            d = json.load(f)
        config = cls.from_dict(d, **kwargs)
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
