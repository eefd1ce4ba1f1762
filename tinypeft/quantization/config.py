"""BitsAndBytesConfig: transformers' names and defaults for loading a model with quantized linear layers."""
import numpy as np

from .functional import QUANT_TYPES


class BitsAndBytesConfig:
    """How `from_pretrained(..., quantization_config=...)` stores the linear layers' weights.

    load_in_4bit: Linear4bit, blocks of 64 with `bnb_4bit_quant_type` ("fp4", transformers' default, or
    "nf4", QLoRA's); bnb_4bit_use_double_quant also quantizes the blocks' absmax values. load_in_8bit:
    Linear8bitLt, int8 rows. llm_int8_skip_modules: module names kept in float32 (default: the output
    head). Computation is float32 (bnb_4bit_compute_dtype may be None or float32)."""

    quant_method = "bitsandbytes"

    def __init__(self, load_in_8bit=False, load_in_4bit=False, llm_int8_threshold=6.0, llm_int8_skip_modules=None,
                 llm_int8_enable_fp32_cpu_offload=False, llm_int8_has_fp16_weight=False,
                 bnb_4bit_compute_dtype=None, bnb_4bit_quant_type="fp4", bnb_4bit_use_double_quant=False,
                 bnb_4bit_quant_storage=None, **kwargs):
        if kwargs:
            raise TypeError(f"BitsAndBytesConfig got unexpected arguments {sorted(kwargs)}.")
        if load_in_4bit and load_in_8bit:
            raise ValueError("load_in_4bit and load_in_8bit are both True, but only one can be used at the same time")
        self.load_in_8bit, self.load_in_4bit = bool(load_in_8bit), bool(load_in_4bit)
        self.llm_int8_threshold = float(llm_int8_threshold)
        self.llm_int8_skip_modules = llm_int8_skip_modules
        if llm_int8_enable_fp32_cpu_offload:
            raise ValueError("llm_int8_enable_fp32_cpu_offload: tinypeft has no device map to offload from.")
        if llm_int8_has_fp16_weight:
            raise ValueError("llm_int8_has_fp16_weight=True: tinypeft keeps 8-bit weights frozen in int8 only.")
        self.llm_int8_enable_fp32_cpu_offload = False
        self.llm_int8_has_fp16_weight = False
        if bnb_4bit_compute_dtype not in (None, "float32", np.float32, np.dtype(np.float32)):
            raise ValueError(f"bnb_4bit_compute_dtype {bnb_4bit_compute_dtype!r}: tinypeft computes in float32 only.")
        self.bnb_4bit_compute_dtype = "float32"
        if bnb_4bit_quant_type not in QUANT_TYPES:
            raise ValueError(f"bnb_4bit_quant_type {bnb_4bit_quant_type!r} is not supported; "
                             f"use one of {list(QUANT_TYPES)}.")
        self.bnb_4bit_quant_type = bnb_4bit_quant_type
        self.bnb_4bit_use_double_quant = bool(bnb_4bit_use_double_quant)
        if bnb_4bit_quant_storage not in (None, "uint8", np.uint8):
            raise ValueError(f"bnb_4bit_quant_storage {bnb_4bit_quant_storage!r}: tinypeft packs into uint8 only.")
        self.bnb_4bit_quant_storage = "uint8"

    def is_quantizable(self):
        return self.load_in_8bit or self.load_in_4bit

    def quantization_method(self):
        if self.load_in_8bit:
            return "llm_int8"
        return self.bnb_4bit_quant_type if self.load_in_4bit else None

    def to_dict(self):
        d = {k: v for k, v in self.__dict__.items()}
        d["quant_method"] = self.quant_method
        return d

    @classmethod
    def from_dict(cls, config_dict):
        d = {k: v for k, v in config_dict.items() if k not in ("quant_method", "_load_in_4bit", "_load_in_8bit")}
        return cls(**d)

    def __repr__(self):
        return f"BitsAndBytesConfig {self.to_dict()}"


class GGUFQuantizationConfig:
    """Keep a GGUF file's linear weights in the blocks they were shipped in (diffusers' name and argument).

        from_pretrained(folder, gguf_file="model.Q4_1.gguf", quantization_config=GGUFQuantizationConfig())

    Without it, from_pretrained(gguf_file=...) dequantizes every tensor to float32, as transformers does.
    With it, each linear layer stored as Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K or Q6_K becomes a GGUFLinear
    holding the file's bytes, decoded a panel at a time inside the matmuls: no re-quantization, the same
    values as the float32 load. compute_dtype: None or float32 (tinypeft computes in float32)."""

    quant_method = "gguf"
    pre_quantized = True

    def __init__(self, compute_dtype=None, **kwargs):
        if kwargs:
            raise TypeError(f"GGUFQuantizationConfig got unexpected arguments {sorted(kwargs)}.")
        if compute_dtype not in (None, "float32", np.float32, np.dtype(np.float32)):
            raise ValueError(f"compute_dtype {compute_dtype!r}: tinypeft computes in float32 only.")
        self.compute_dtype = "float32"

    def is_quantizable(self):
        return True

    def to_dict(self):
        return {"compute_dtype": self.compute_dtype, "quant_method": self.quant_method}

    @classmethod
    def from_dict(cls, config_dict):
        return cls(**{k: v for k, v in config_dict.items() if k not in ("quant_method", "pre_quantized")})

    def __repr__(self):
        return f"GGUFQuantizationConfig {self.to_dict()}"
