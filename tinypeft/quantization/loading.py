"""Loading a model quantized, one layer at a time (transformers.integrations.bitsandbytes' names).

from_pretrained(..., quantization_config=BitsAndBytesConfig(...)) builds the model empty, swaps every
linear layer for a Linear4bit / Linear8bitLt placeholder (replace_with_bnb_linear), then streams the
checkpoint: each tensor is read from disk alone, and a quantized layer's weight is quantized as it is
assigned. The float32 model never exists in memory; the peak holds one float32 tensor at a time.
"""
from collections.abc import Mapping

import numpy as np

from .. import nn
from ..checkpoint_io import _DTYPES, bf16_bits_to_float32, checkpoint_files, read_header
from ..nn.init import Unallocated
from ..nn.module import _RAW
from .config import BitsAndBytesConfig, GGUFQuantizationConfig
from .modules import Int8Params, Linear4bit, Linear8bitLt, Params4bit


def get_keys_to_not_convert(model):
    """Modules kept in float32 by default: the output head (and a tied input embedding with it)."""
    keep = []
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    for name, module in model.named_modules():
        if out is not None and module is out:
            keep.append(name.rpartition(".")[2])
    if not keep:  # no LM head: the last module (a classifier head) stays float32, as transformers does
        names = [n for n, _ in model.named_parameters()]
        if names:
            keep.append(names[-1].rsplit(".", 2)[-2])
    return keep


def _skipped(name, modules_to_not_convert):
    parts = name.split(".")
    return any(key == name or key in parts or name.endswith("." + key) or ("." + key + ".") in "." + name + "."
               for key in modules_to_not_convert)


def replace_with_bnb_linear(model, modules_to_not_convert=None, quantization_config=None):
    """Every Linear (and GPT-2 Conv1D) outside modules_to_not_convert becomes an empty quantized layer."""
    from ..models.gpt2 import Conv1D

    config = quantization_config
    if modules_to_not_convert is None:
        modules_to_not_convert = get_keys_to_not_convert(model)
    replaced = 0
    for name, module in list(model.named_modules()):
        is_conv1d = isinstance(module, Conv1D)
        if not (type(module) is nn.Linear or is_conv1d) or _skipped(name, modules_to_not_convert):
            continue
        if is_conv1d:
            in_f, out_f = module.weight.shape
        else:
            out_f, in_f = module.weight.shape
        bias = module.bias is not None
        if config.load_in_4bit:
            new = Linear4bit(in_f, out_f, bias=bias, compress_statistics=config.bnb_4bit_use_double_quant,
                             quant_type=config.bnb_4bit_quant_type)
        else:
            new = Linear8bitLt(in_f, out_f, bias=bias, has_fp16_weights=False, threshold=config.llm_int8_threshold)
        if bias:
            new.bias = module.bias  # the placeholder (or values) of the original, float32
        if is_conv1d:  # the checkpoint holds [in, out]: accept it so, quantize it as [out, in]
            _RAW.__set__(new.weight, Unallocated((in_f, out_f), np.float32))
            new.weight.loads_transposed = True
        new.source_cls = type(module)
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
        replaced += 1
    if replaced == 0:
        raise ValueError("replace_with_bnb_linear: no linear layer was replaced; the model has nothing to quantize.")
    return model


class LazyCheckpoint(Mapping):
    """A checkpoint's tensors by name, each read from disk only when asked for (in file order by items())."""

    def __init__(self, model_dir):
        self.entries = {}
        for path in checkpoint_files(model_dir):
            header, start = read_header(path)
            header.pop("__metadata__", None)
            for name, info in header.items():
                self.entries[name] = (path, start, info)

    def __getitem__(self, name):
        path, start, info = self.entries[name]
        dtype_name = info["dtype"]
        if dtype_name not in _DTYPES:
            raise ValueError(f"{path}: tensor {name!r} has dtype {dtype_name}, which tinypeft cannot read")
        dtype, shape = _DTYPES[dtype_name], tuple(info["shape"])
        begin, end = info["data_offsets"]
        with open(path, "rb") as f:
            f.seek(start + begin)
            arr = np.frombuffer(f.read(end - begin), dtype=dtype).reshape(shape)
        if dtype_name == "BF16":
            return bf16_bits_to_float32(arr)
        return arr.astype(np.float32 if dtype.kind == "f" else dtype.newbyteorder("="))

    def __iter__(self):
        return iter(sorted(self.entries, key=lambda n: (str(self.entries[n][0]), self.entries[n][2]["data_offsets"][0])))

    def __len__(self):
        return len(self.entries)


class LazyGGUFCheckpoint(Mapping):
    """A GGUF file's tensors under transformers' names, each dequantized only when asked for (the same
    names, un-permuted q/k rows and skipped tensors as tinypeft.gguf.state_dict_from_gguf).

    keep_blocks: names whose raw blocks (uint8 [rows, bytes per row]) are returned instead, for GGUFLinear;
    q/k rows are un-permuted the same way, whole rows of blocks at a time."""

    def __init__(self, gf, config, keep_blocks=()):
        from ..gguf.mapping import check_architecture, gguf_to_hf_name

        _, self.permuted = check_architecture(gf)
        self.gf, self.config, self.keep_blocks = gf, config, set(keep_blocks)
        self.names = {gguf_to_hf_name(n): n for n in gf.tensors if gguf_to_hf_name(n) is not None}

    def __getitem__(self, hf_name):
        from ..gguf.mapping import unpermute_qk_rows

        name = self.names[hf_name]
        if hf_name in self.keep_blocks:  # the file's bytes, one row of blocks per output feature: a read-only
            # view of the memory-mapped file (as llama.cpp maps its weights), so the blocks are not held twice
            w = np.asarray(self.gf.tensors[name].data).view(np.uint8).reshape(self.gf.shape(name)[0], -1)
        else:
            w = self.gf.dequantize(name)
        if self.permuted and name.endswith(("attn_q.weight", "attn_q.bias")):
            w = unpermute_qk_rows(w, self.config.num_attention_heads)
        elif self.permuted and name.endswith(("attn_k.weight", "attn_k.bias")):
            w = unpermute_qk_rows(w, self.config.num_key_value_heads)
        return w

    def __iter__(self):
        return iter(self.names)

    def __len__(self):
        return len(self.names)


def prepare_quantized_gguf_load(model, quantization_config, gf, config):
    """Swap in quantized placeholders and return the GGUF's tensors as a LazyGGUFCheckpoint (called by
    tinypeft.gguf.load_gguf_model): a GGUFQuantizationConfig keeps the file's own blocks (quantization/gguf.py),
    a BitsAndBytesConfig re-quantizes each tensor as it is dequantized."""
    if isinstance(quantization_config, GGUFQuantizationConfig) or (
            isinstance(quantization_config, dict) and quantization_config.get("quant_method") == "gguf"):
        from .gguf import prepare_kept_gguf_load

        return prepare_kept_gguf_load(model, quantization_config, gf, config)
    _prepare(model, quantization_config)
    return LazyGGUFCheckpoint(gf, config)


def prepare_quantized_load(model, quantization_config, path):
    """Swap in quantized placeholders and return the checkpoint as a LazyCheckpoint (called by from_pretrained)."""
    _prepare(model, quantization_config)
    return LazyCheckpoint(path)


def _prepare(model, quantization_config):
    if isinstance(quantization_config, dict) and quantization_config.get("quant_method") == "gguf":
        quantization_config = GGUFQuantizationConfig.from_dict(quantization_config)
    elif isinstance(quantization_config, dict):
        quantization_config = BitsAndBytesConfig.from_dict(quantization_config)
    if isinstance(quantization_config, GGUFQuantizationConfig):
        raise ValueError("GGUFQuantizationConfig keeps a .gguf file's own blocks: pass gguf_file=... to "
                         "from_pretrained (for safetensors weights, use BitsAndBytesConfig).")
    if not isinstance(quantization_config, BitsAndBytesConfig):
        raise TypeError(f"quantization_config must be a BitsAndBytesConfig, got {type(quantization_config).__name__}.")
    if not quantization_config.is_quantizable():
        raise ValueError("quantization_config has neither load_in_4bit nor load_in_8bit set: nothing to quantize.")
    skip = quantization_config.llm_int8_skip_modules
    replace_with_bnb_linear(model, skip if skip is not None else get_keys_to_not_convert(model), quantization_config)
    model.quantization_config = quantization_config
    model.is_loaded_in_4bit = quantization_config.load_in_4bit
    model.is_loaded_in_8bit = quantization_config.load_in_8bit
    model.is_quantized = True


def quantized_weight_bytes(model):
    """Bytes of the quantized layers' storage (packed values and their statistics)."""
    total = 0
    for p in model.parameters():
        if isinstance(p, Params4bit) and p.is_quantized():
            total += p.data.nbytes + p.quant_state.nbytes()
        elif isinstance(p, Int8Params) and p.is_quantized():
            total += p.data.nbytes + p.SCB.nbytes
    return total
