"""(IA)^3 layers: a frozen base layer plus, per adapter, one learned vector `ia3_l.<adapter>`.

    attention keys/values (is_feedforward=False):  y = base(x) * l        l stored [out, 1]
    feed-forward (is_feedforward=True):            y = base(x * l)        l stored [1, in]

(IA)^3 rescales activations: the keys and values of attention, and the inner activation of the feed-forward
block, i.e. the input of its second layer. Both forms are plain elementwise products around the base layer,
so autograd derives the gradients from ops already proven (mul, linear):

    non-feedforward, z = x W^T + b:  dl = sum_rows(g * z),          dx = (g * l) W
    feedforward,     u = x * l:      dl = sum_rows((g W) * x),      dx = (g W) * l

Several active adapters multiply: l = l_1 * l_2 * ... (PEFT's order of operations).
Merging folds l into the weights: W x scaled per output row is W scaled per row (and its bias too); W applied
to x scaled per input column is W scaled per column (the bias is untouched).
"""
import warnings

import numpy as np

from .... import backend, nn
from ....creation import generator
from ....models.gpt2 import Conv1D
from ..tuners_utils import BaseTunerLayer

EPS = 1e-8  # PEFT divides by l + 1e-8 on unmerge, so that l = 0 does not give inf


class IA3Layer(nn.Module, BaseTunerLayer):
    adapter_layer_names = ("ia3_l",)

    def __init__(self, base_layer, is_feedforward=False, fan_in_fan_out=False):
        super().__init__()
        self._init_tuner(base_layer)
        self.ia3_l = nn.ParameterDict({})
        self.is_feedforward = is_feedforward
        self.fan_in_fan_out = fan_in_fan_out
        if isinstance(base_layer, Conv1D):
            self.in_features, self.out_features = base_layer.weight.shape  # Conv1D stores [in, out]
        elif isinstance(base_layer, nn.Linear):
            self.in_features, self.out_features = base_layer.in_features, base_layer.out_features
        else:
            raise TypeError(f"Unsupported layer type {type(base_layer).__name__}: (IA)^3 wraps Linear and Conv1D.")

    def update_layer(self, adapter_name, init_ia3_weights=True):
        shape = (1, self.in_features) if self.is_feedforward else (self.out_features, 1)
        if init_ia3_weights:
            value = np.ones(shape, np.float32)  # a no-op: every activation times 1
        else:
            value = generator().standard_normal(shape).astype(np.float32)  # as PEFT's torch.randn, for tests
        self.ia3_l[adapter_name] = nn.Parameter(backend.to_device(value, self.base_layer.weight.device))
        self.set_adapter(self.active_adapters)

    def _scale_for_weight(self, adapter):
        """l shaped to broadcast against the stored weight: rows (out) or columns (in) of W [out, in]."""
        l = self.ia3_l[adapter].data
        return l.T if self.fan_in_fan_out else l  # Conv1D's W is [in, out]: transpose l to match

    def merge(self, safe_merge=False, adapter_names=None):
        """Fold each active adapter's l into the base weight (and, for output scaling, into the bias)."""
        for adapter in adapter_names or self.active_adapters:
            if adapter in self.merged_adapters or adapter not in self.ia3_l:
                continue
            W, b = self.base_layer.weight, self.base_layer.bias
            weight = W.data * self._scale_for_weight(adapter)
            # (x W^T + b) * l = x (W * l_rows)^T + b * l: the bias is scaled only when the output is
            bias = None
            if not self.is_feedforward and b is not None:
                bias = b.data * self.ia3_l[adapter].data.reshape(b.shape)
            if safe_merge and not (np.isfinite(weight).all() and (bias is None or np.isfinite(bias).all())):
                raise ValueError(f"NaNs detected in the merged weights. The adapter {adapter} seems to be broken")
            W.data = weight.astype(W.dtype)
            if bias is not None:
                b.data = bias.astype(b.dtype)
            self.merged_adapters.append(adapter)

    def unmerge(self):
        if not self.merged:
            warnings.warn("Already unmerged. Nothing to do.")
            return
        while self.merged_adapters:
            adapter = self.merged_adapters.pop()
            W, b = self.base_layer.weight, self.base_layer.bias
            W.data = (W.data / (self._scale_for_weight(adapter) + EPS)).astype(W.dtype)
            if not self.is_feedforward and b is not None:
                b.data = (b.data / (self.ia3_l[adapter].data.reshape(b.shape) + EPS)).astype(b.dtype)

    def forward(self, x, *args, **kwargs):
        active = [a for a in self.active_adapters if a in self.ia3_l]
        if self.disable_adapters:
            if self.merged:
                self.unmerge()
            return self.base_layer(x, *args, **kwargs)
        if self.merged or not active:
            return self.base_layer(x, *args, **kwargs)
        scale = None
        for adapter in active:
            l = self.ia3_l[adapter].reshape(-1)  # [out, 1] or [1, in] -> a vector on the last axis
            scale = l if scale is None else scale * l
        if scale.dtype != x.dtype:
            scale = scale.to(x.dtype)
        if self.is_feedforward:
            return self.base_layer(x * scale, *args, **kwargs)  # [..., in] * [in]
        return self.base_layer(x, *args, **kwargs) * scale  # [..., out] * [out]

    def extra_repr(self):
        return f"is_feedforward={self.is_feedforward}"


class Linear(IA3Layer):
    """(IA)^3 around nn.Linear (or GPT-2's Conv1D with fan_in_fan_out=True)."""
