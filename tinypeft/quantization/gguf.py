"""GGUF's own blocks kept as shipped: GGUFParameter and GGUFLinear (diffusers' names), and the loader.

    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
                                                 quantization_config=GGUFQuantizationConfig())

transformers always dequantizes a GGUF file to float32 (and tinypeft does too without a
quantization_config). diffusers can instead keep each linear layer's weight in the file's blocks
(Q4_0, Q4_1, Q8_0, K-quants...) and dequantize on the fly; it names the switch GGUFQuantizationConfig.
Here the blocks are the bytes of the file, row by row: W [n, k] is uint8 [n, k / 32 * type_size] (256 for
K-quants). The matmuls decode a panel of rows at a time in C (csrc/gguf_quant.c), so no float32 copy of
the weight exists; the plain reference is tinypeft.gguf.quants.dequantize, then a matmul.

Tensors in a type tinypeft cannot decode in C (F32, F16, BF16) stay ordinary float32 layers, as diffusers
leaves unquantized types alone; the output head and the embeddings stay float32, as in the 4-bit path.
"""
import logging

import numpy as np

from .. import nn
from ..nn.init import Unallocated
from ..nn.module import _RAW
from .config import GGUFQuantizationConfig
from .modules import _QuantizedParameter, _bias
from .ops import quantized_linear

logger = logging.getLogger("tinypeft")

# ggml type name -> id; the block types kept as they are (each has a C decoder and a NumPy reference)
KEPT_TYPES = {"Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14}
# the types gguf.quants.quantize (llama.cpp's Python reference) can write: what a LoRA merge re-quantizes to
REQUANTIZABLE = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0")
BITS = {"Q4_0": 4, "Q4_1": 4, "Q5_0": 5, "Q5_1": 5, "Q8_0": 8, "Q4_K": 4, "Q5_K": 5, "Q6_K": 6}


def _block_geometry(quant_type):
    from ..gguf.quants import GGML_TYPES

    _, block, size = GGML_TYPES[KEPT_TYPES[quant_type]]
    return block, size


class GGUFParameter(_QuantizedParameter):
    """A frozen weight [out, in] held as GGUF blocks: uint8 [out, in / block * type_size], as in the file.

    Assigning uint8 blocks stores them (after a shape check); assigning float values quantizes them with the
    `gguf` package's llama.cpp reference (legacy types only: K-quants need llama.cpp's own quantizer)."""

    quant_kind = "gguf"

    def __init__(self, data=None, requires_grad=False, quant_type=None, quant_shape=None):
        if quant_type not in KEPT_TYPES:
            raise ValueError(f"GGUFParameter quant_type {quant_type!r} is not kept in blocks; use one of "
                             f"{sorted(KEPT_TYPES)}.")
        self.quant_type, self.ggml_type = quant_type, KEPT_TYPES[quant_type]
        super().__init__(data, requires_grad, quant_shape)

    def row_bytes(self):
        block, size = _block_geometry(self.quant_type)
        return self.quant_shape[1] // block * size

    @_QuantizedParameter.data.setter
    def data(self, value):
        arr = getattr(value, "data", value) if not isinstance(value, np.ndarray) else value
        if isinstance(arr, np.ndarray) and arr.dtype == np.uint8:
            want = (self.quant_shape[0], self.row_bytes())
            if tuple(arr.shape) != want:
                raise ValueError(f"A {self.quant_type} GGUFParameter of shape {self.quant_shape} holds blocks of "
                                 f"shape {want} (uint8), got {tuple(arr.shape)}.")
            _RAW.__set__(self, np.ascontiguousarray(arr))
            return
        _QuantizedParameter.data.fset(self, value)

    def _quantize(self, arr):
        if self.quant_type not in REQUANTIZABLE:
            raise NotImplementedError(
                f"tinypeft cannot write {self.quant_type} blocks (the gguf package quantizes only "
                f"{', '.join(REQUANTIZABLE)}); load the model without quantization_config (float32) to merge.")
        from ..gguf.file import _import_gguf

        gguf = _import_gguf()
        blocks = gguf.quants.quantize(np.ascontiguousarray(arr, np.float32), gguf.GGMLQuantizationType[self.quant_type])
        _RAW.__set__(self, np.ascontiguousarray(blocks, dtype=np.uint8))


class GGUFLinear(nn.Linear):
    """y = x dequantize(W)^T + b with W kept in the GGUF file's blocks (diffusers' GGUFLinear); b float32."""

    def __init__(self, in_features, out_features, bias=False, compute_dtype=None, device=None, quant_type="Q4_0"):
        nn.Module.__init__(self)  # not nn.Linear's: no float32 weight is ever made
        if compute_dtype not in (None, np.float32, "float32"):
            raise ValueError(f"compute_dtype {compute_dtype!r}: tinypeft computes in float32 only.")
        self.in_features, self.out_features = in_features, out_features
        self.compute_dtype = np.float32
        block, size = _block_geometry(quant_type) if quant_type in KEPT_TYPES else (1, 1)
        if in_features % block:
            raise ValueError(f"GGUFLinear: in_features {in_features} is not a multiple of {quant_type}'s block "
                             f"of {block} weights.")
        self.weight = GGUFParameter(Unallocated((out_features, in_features // block * size), np.uint8),
                                    quant_type=quant_type, quant_shape=(out_features, in_features))
        self.bias = _bias(out_features, bias)
        if self.bias is None:
            self.register_parameter("bias", None)

    def reset_parameters(self):
        pass  # the blocks come from the file

    def forward(self, x):
        return quantized_linear(x, self.weight, self.bias)  # [..., in] -> [..., out]

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"quant_type={self.weight.quant_type}")


def _replace_with_gguf_linear(model, tensor_types, modules_to_not_convert):
    """Every nn.Linear whose weight the file stores in a kept block type becomes an empty GGUFLinear.

    tensor_types: {transformers weight name: ggml type name}. Returns the replaced modules' names."""
    from .loading import _skipped

    replaced = []
    for name, module in list(model.named_modules()):
        if type(module) is not nn.Linear or _skipped(name, modules_to_not_convert):
            continue
        quant_type = tensor_types.get(f"{name}.weight")
        if quant_type not in KEPT_TYPES or module.in_features % _block_geometry(quant_type)[0]:
            continue
        new = GGUFLinear(module.in_features, module.out_features, bias=module.bias is not None, quant_type=quant_type)
        if module.bias is not None:
            new.bias = module.bias
        new.source_cls = type(module)
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
        replaced.append(name)
    return replaced


def prepare_kept_gguf_load(model, quantization_config, gf, config):
    """Swap the linear layers whose weight the file stores in a kept block type for GGUFLinear and return the
    file's tensors with those blocks kept (called by tinypeft.gguf.load_gguf_model); the rest is float32."""
    from ..gguf.mapping import gguf_to_hf_name
    from .loading import LazyGGUFCheckpoint, get_keys_to_not_convert

    if isinstance(quantization_config, dict):
        quantization_config = GGUFQuantizationConfig.from_dict(quantization_config)
    types = {gguf_to_hf_name(n): gf.type_name(n) for n in gf.tensors if gguf_to_hf_name(n) is not None}
    kept = _replace_with_gguf_linear(model, types, get_keys_to_not_convert(model))
    if not kept:
        logger.warning("%s: no linear layer is stored in a block type tinypeft keeps (%s); the model is float32.",
                       config.name_or_path, ", ".join(sorted(KEPT_TYPES)))
    model.quantization_config = quantization_config
    model.quantization_method = quantization_config.quant_method
    model.is_quantized = True
    model.gguf_lm_head_blocks = _lm_head_blocks(gf)
    return LazyGGUFCheckpoint(gf, config, keep_blocks={f"{n}.weight" for n in kept})


def _lm_head_blocks(gf):
    """(quant_type, uint8 blocks [vocab, bytes per row]) of the file's output head (token_embd when the head is
    tied to it) when the file stores it in a kept type, else None.

    The model keeps its float32 head, as transformers does (the embedding needs float rows, adapters and the
    module path use it). The decoding step (tinypeft.models.fast_decode) multiplies by these blocks instead, a
    quarter of the bytes for Q8_0, while the float32 head is bit for bit their dequantization: the very same
    weights, only the order of the sums differs."""
    name = "output.weight" if "output.weight" in gf.tensors else "token_embd.weight"
    if name not in gf.tensors or gf.type_name(name) not in KEPT_TYPES:
        return None
    return gf.type_name(name), np.asarray(gf.tensors[name].data).view(np.uint8).reshape(gf.shape(name)[0], -1)


def gguf_weight_bytes(model):
    """Bytes of the kept GGUF blocks."""
    return sum(p.data.nbytes for p in model.parameters() if isinstance(p, GGUFParameter) and p.is_quantized())
