"""Quantized frozen weights: bitsandbytes' 4-bit (NF4/FP4) and 8-bit formats, for QLoRA on a CPU."""
from .config import BitsAndBytesConfig, GGUFQuantizationConfig
from .functional import (QuantState, create_dynamic_map, create_normal_map, dequantize_4bit, get_4bit_type,
                         int8_vectorwise_dequant, int8_vectorwise_quant, quantize_4bit)
from .gguf import GGUFLinear, GGUFParameter
from .loading import get_keys_to_not_convert, replace_with_bnb_linear
from .modules import Int8Params, Linear4bit, Linear8bitLt, Params4bit
from .ops import quantized_linear

__all__ = [
    "BitsAndBytesConfig", "GGUFQuantizationConfig", "GGUFLinear", "GGUFParameter", "QuantState",
    "create_dynamic_map", "create_normal_map", "dequantize_4bit", "get_4bit_type",
    "int8_vectorwise_dequant", "int8_vectorwise_quant", "quantize_4bit", "get_keys_to_not_convert",
    "replace_with_bnb_linear", "Int8Params", "Linear4bit", "Linear8bitLt", "Params4bit", "quantized_linear",
]
