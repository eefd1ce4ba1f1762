"""GGUF files (llama.cpp's format): a model, its tokenizer and its chat template in one file.

    model = AutoModelForCausalLM.from_pretrained(dir_or_name, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    tokenizer = AutoTokenizer.from_pretrained(dir_or_name, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")

The file is read with the `gguf` package (pip install 'tinypeft[gguf]'), the weights dequantized to
float32 in NumPy (quants.py), the config and names mapped to transformers' (mapping.py), the tokenizer
rebuilt from metadata (tokenizer.py): the same float32 model transformers gets from the same file.
"""
import logging
import os
from pathlib import Path

from .file import GGUFFile, open_gguf
from .mapping import config_dict_from_gguf, state_dict_from_gguf, unpermute_qk_rows
from .quants import SUPPORTED, dequantize
from .tokenizer import tokenizer_from_gguf_metadata

__all__ = ["GGUFFile", "open_gguf", "dequantize", "SUPPORTED", "config_dict_from_gguf", "state_dict_from_gguf",
           "unpermute_qk_rows", "tokenizer_from_gguf_metadata", "find_gguf_file", "load_gguf_config",
           "load_gguf_model", "load_gguf_tokenizer"]

logger = logging.getLogger("tinypeft")


def find_gguf_file(directory, gguf_file=None):
    """The path of `gguf_file` inside `directory`; with gguf_file=None, the folder's only .gguf (else None)."""
    directory = Path(directory)
    if gguf_file is not None:
        path = Path(gguf_file).expanduser()
        path = path if path.is_absolute() else directory / path
        if not path.is_file():
            found = sorted(p.name for p in directory.glob("*.gguf"))
            raise FileNotFoundError(f"no GGUF file {gguf_file!r} in {directory}; the .gguf files there: {found or 'none'}")
        return path
    found = sorted(directory.glob("*.gguf"))
    if len(found) == 1 and not (directory / "config.json").is_file():
        return found[0]
    return None


def load_gguf_config(path):
    """The tinypeft config (e.g. LlamaConfig) that the file's metadata describes."""
    from ..models.auto import AutoConfig

    d = config_dict_from_gguf(open_gguf(path))
    model_type = d.pop("model_type")
    return AutoConfig.for_model(model_type, **d)


def load_gguf_model(model_class, path, name_or_path=None, quantization_config=None):
    """A model of `model_class` (e.g. LlamaForCausalLM) with the file's weights, dequantized to float32. With a
    quantization_config, its linear layers keep the file's own blocks (GGUFQuantizationConfig) or are re-quantized
    to NF4/FP4/int8 as each tensor is dequantized (BitsAndBytesConfig)."""
    from .. import nn

    gf = open_gguf(path)
    config = load_gguf_config(path)
    config.name_or_path = str(name_or_path or path)
    with nn.init_empty_weights():
        model = model_class(config)
    model.name_or_path = config.name_or_path
    model.tie_weights()
    if quantization_config is None:
        state = state_dict_from_gguf(gf, config)
    else:  # as PreTrainedModel.from_pretrained: quantized placeholders first, then the tensors one at a time
        from ..quantization.loading import prepare_quantized_gguf_load

        state = prepare_quantized_gguf_load(model, quantization_config, gf, config)
    model._load_checkpoint(state, str(path))
    model.eval()
    return model


def load_gguf_tokenizer(path, name_or_path=None, **kwargs):
    """A tinypeft PreTrainedTokenizer from the file's tokenizer.ggml.* metadata (and its chat template)."""
    from ..tokenization import PreTrainedTokenizer

    gf = open_gguf(os.fspath(path))
    tok, settings = tokenizer_from_gguf_metadata(gf.metadata, source=str(path))
    init_config = settings.pop("init_config")
    for key in list(kwargs):
        if key in settings:
            settings[key] = kwargs.pop(key)
    tokenizer = PreTrainedTokenizer(tok, name_or_path=str(name_or_path or path), init_config=init_config,
                                    **settings, **kwargs)
    return tokenizer
