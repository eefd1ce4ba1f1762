"""(IA)^3 on quantized layers (PEFT's ia3/bnb.py): the learned vector scales the input (feed-forward) or the
output of a Linear4bit / Linear8bitLt; the forward is IA3Layer's. Merging folds l into the weight by
dequantizing, scaling and quantizing again, which rounds: it warns, as LoRA's merge on a quantized base."""
import warnings

from ....quantization.modules import Int8Params, Linear4bit as BnbLinear4bit, Linear8bitLt as BnbLinear8bitLt
from ....quantization.modules import Params4bit
from .layer import EPS, IA3Layer


class _QuantizedIA3Layer(IA3Layer):
    bits = None

    def _set_weight(self, W):
        old = self.base_layer.weight
        new = (Params4bit(W, quant_type=old.quant_type, blocksize=old.blocksize,
                          compress_statistics=old.compress_statistics) if isinstance(old, Params4bit) else Int8Params(W))
        new.loads_transposed = old.loads_transposed
        self.base_layer.weight = new

    def merge(self, safe_merge=False, adapter_names=None):
        for adapter in adapter_names or self.active_adapters:
            if adapter in self.merged_adapters or adapter not in self.ia3_l:
                continue
            warnings.warn(f"Merge ia3 module to {self.bits}-bit linear may get different generations due to "
                          "rounding errors.")
            self._set_weight(self.base_layer.weight.dequantize() * self.ia3_l[adapter].data)
            b = self.base_layer.bias
            if not self.is_feedforward and b is not None:
                b.data = b.data * self.ia3_l[adapter].data.reshape(b.shape)
            self.merged_adapters.append(adapter)

    def unmerge(self):
        while self.merged_adapters:
            adapter = self.merged_adapters.pop()
            self._set_weight(self.base_layer.weight.dequantize() / (self.ia3_l[adapter].data + EPS))
            b = self.base_layer.bias
            if not self.is_feedforward and b is not None:
                b.data = b.data / (self.ia3_l[adapter].data.reshape(b.shape) + EPS)


class Linear4bit(_QuantizedIA3Layer):
    bits = 4


class Linear8bitLt(_QuantizedIA3Layer):
    bits = 8


def dispatch_bnb(target, is_feedforward):
    """The (IA)^3 layer for a quantized target, or None when the target is not quantized."""
    if isinstance(target, BnbLinear4bit):
        return Linear4bit(target, is_feedforward=is_feedforward)
    if isinstance(target, BnbLinear8bitLt):
        return Linear8bitLt(target, is_feedforward=is_feedforward)
    return None
