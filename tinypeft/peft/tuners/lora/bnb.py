"""LoRA on quantized layers (PEFT's lora/bnb.py): Linear4bit and Linear8bitLt as the frozen base.

    y = base(x) + s * B(A(dropout(x)))        base(x) = x dequantize(W)^T + b, W stays packed

The adapters are ordinary float32 Linear layers: they train, the 4-bit or 8-bit weight never does.
Merging dequantizes W, adds s B A and quantizes the sum again, which rounds: PEFT warns, and so do we.
DoRA reads the dequantized weight for its row norm; the frozen base still runs from the packed weight.
"""
import warnings

import numpy as np

from .... import functional as F
from .... import nn
from ....quantization.modules import Int8Params, Linear4bit as BnbLinear4bit, Linear8bitLt as BnbLinear8bitLt
from ....quantization.modules import Params4bit
from ....quantization.ops import lora_quantized_linear
from ....tensor import Tensor
from .layer import Linear, LoraLayer


class _QuantizedLoraLayer(LoraLayer):
    bits = None

    def __init__(self, base_layer, **kwargs):
        super().__init__(base_layer)
        # the packed weight's shape is not [out, in]: take the layer's own; dequantized it is [out, in]
        self.in_features, self.out_features = base_layer.in_features, base_layer.out_features
        self.fan_in_fan_out = False

    # the adapters are those of a plain LoRA Linear: float32 A [r, in] and B [out, r], PEFT's init
    _create_adapter = Linear._create_adapter
    _init_adapter = Linear._init_adapter

    def _dequantized_weight(self):
        return self.base_layer.weight.dequantize()  # [out, in] float32

    def forward(self, x, *args, **kwargs):
        active = self._adapters_to_run()
        if not active:
            return self.base_layer(x, *args, **kwargs)
        first, rest = active[0], active[1:]
        if self.use_dora[first]:
            result, rest = self.base_layer(x), active
        else:  # the first adapter rides on the frozen layer's op
            drop = self.lora_dropout[first]
            p = drop.p if isinstance(drop, nn.Dropout) else 0.0
            result = lora_quantized_linear(x, self.base_layer.weight, self.base_layer.bias, self.lora_A[first].weight,
                                           self.lora_B[first].weight, self.scaling[first], p, self.training)
            if self.lora_B[first].bias is not None:
                result = result + self.lora_B[first].bias * self.scaling[first]
        for adapter in rest:
            xd = self.lora_dropout[adapter](x)
            if not self.use_dora[adapter]:
                result = result + self._lora_path(adapter, xd)
                continue
            # DoRA: m / ||W + sBA|| rescales the whole (dropped-out) layer, the norm a constant
            mag = self.lora_magnitude_vector[adapter].weight / Tensor(self._weight_norm(adapter))
            base_d = self.base_layer(xd)
            if self.base_layer.bias is not None:
                base_d = base_d - self.base_layer.bias
            result = result + (mag - 1) * base_d + mag * self._lora_path(adapter, xd)
        return result

    def _lora_path(self, adapter, xd):
        """s * B(A(xd)), with s folded into B's (small) weight: no [..., out] tensor is kept for a scalar multiply."""
        B, s = self.lora_B[adapter], self.scaling[adapter]
        h = self.lora_A[adapter](xd)  # [..., in] -> [..., r]
        return F.linear(h, B.weight * s, None if B.bias is None else B.bias * s)  # [..., r] -> [..., out]

    # -- merging: dequantize, add, quantize again (LoraLayer.merge/unmerge through these two) --------------
    def _base_weight(self):
        return self._dequantized_weight()

    def _set_base_weight(self, W):
        old = self.base_layer.weight
        W = W.astype(np.float32)
        if isinstance(old, Params4bit):
            new = Params4bit(W, quant_type=old.quant_type, blocksize=old.blocksize,
                             compress_statistics=old.compress_statistics)
        else:
            new = Int8Params(W)
        new.loads_transposed = old.loads_transposed
        self.base_layer.weight = new

    def merge(self, safe_merge=False, adapter_names=None):
        if any(a not in self.merged_adapters and a in self.scaling for a in adapter_names or self.active_adapters):
            warnings.warn(f"Merge lora module to {self.bits}-bit linear may get different generations due to "
                          "rounding errors.")
        super().merge(safe_merge, adapter_names)

    def unmerge(self):
        if self.merged_adapters:
            warnings.warn(f"Unmerge lora module to {self.bits}-bit linear may get different generations due to "
                          "rounding errors.")
        super().unmerge()


class Linear4bit(_QuantizedLoraLayer):
    """LoRA around bitsandbytes' Linear4bit."""

    bits = 4


class Linear8bitLt(_QuantizedLoraLayer):
    """LoRA around bitsandbytes' Linear8bitLt."""

    bits = 8


def dispatch_bnb(target):
    """The LoRA layer for a quantized target, or None when the target is not quantized."""
    if isinstance(target, BnbLinear4bit):
        return Linear4bit(target)
    if isinstance(target, BnbLinear8bitLt):
        return Linear8bitLt(target)
    return None

