"""LoRA on a GGUFLinear (a linear layer that keeps a GGUF file's blocks), as on bitsandbytes' layers.

    y = base(x) + s * B(A(dropout(x)))        base(x) = x dequantize(W)^T + b, W stays in its blocks

PEFT has no layer for this (diffusers' GGUFLinear is an nn.Linear, so PEFT wraps it as one); tinypeft gives
it the quantized layers' fused op, so the frozen blocks are decoded a panel at a time in forward and
backward alike. Merging re-quantizes W + s B A into the same block type, with the rounding warning.
"""
import numpy as np

from ....quantization.gguf import BITS, GGUFLinear, GGUFParameter
from .bnb import _QuantizedLoraLayer


class GGUFLoraLinear(_QuantizedLoraLayer):
    """LoRA around a GGUFLinear."""

    def __init__(self, base_layer, **kwargs):
        super().__init__(base_layer, **kwargs)
        self.bits = BITS[base_layer.weight.quant_type]

    def _set_base_weight(self, W):
        old = self.base_layer.weight
        self.base_layer.weight = GGUFParameter(W.astype(np.float32), quant_type=old.quant_type,
                                               quant_shape=old.quant_shape)


def dispatch_gguf(target):
    """The LoRA layer for a GGUFLinear target, or None."""
    return GGUFLoraLinear(target) if isinstance(target, GGUFLinear) else None
