"""HiRA layers: per adapter hira_A [r, in] and hira_B [out, r]; the update is the frozen weight times B A,
elementwise (a Hadamard product):

    Linear:    y = base(x) + dropout(x) (W0 * (B A))^T              W0 [out, in] (GPT-2's Conv1D transposed)
    Embedding: y = emb(ids) + emb_{W0 * (B A)^T}(ids)               hira_embedding_A [r, V], hira_embedding_B [d, r]
    Conv:      y = base(x) + conv(dropout(x), W0 * (B A viewed like W0))   A [r, in, *k], B [out, r, 1, ...]

Only mul, matmul and reshape: autograd gives the gradients. Merging adds W0 * sum of the adapters' B A with the
weight as it was before the first merge, which is kept and put back on unmerge (as PEFT).
"""
import math

import numpy as np

from .... import functional as F
from .... import nn
from ....autograd import no_grad
from ....models.gpt2 import Conv1D
from ..tuners_utils import BaseTunerLayer


class HiraLayer(nn.Module, BaseTunerLayer):
    adapter_layer_names = ("hira_A", "hira_B", "hira_embedding_A", "hira_embedding_B")
    other_param_names = ("r", "hira_dropout")

    def __init__(self, base_layer, fan_in_fan_out=False):
        super().__init__()
        self._init_tuner(base_layer)
        self.r, self.hira_dropout = {}, {}
        self.hira_A, self.hira_B = nn.ParameterDict({}), nn.ParameterDict({})
        self.hira_embedding_A, self.hira_embedding_B = nn.ParameterDict({}), nn.ParameterDict({})
        self.fan_in_fan_out = fan_in_fan_out
        self._base_weight_before_merge = None
        if isinstance(base_layer, Conv1D):
            self.in_features, self.out_features = base_layer.weight.shape  # stored [in, out]
        elif isinstance(base_layer, nn.Embedding):
            self.in_features, self.out_features = base_layer.num_embeddings, base_layer.embedding_dim
        elif isinstance(base_layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            self.in_features, self.out_features = base_layer.in_channels, base_layer.out_channels
        else:
            self.in_features, self.out_features = base_layer.in_features, base_layer.out_features

    _names = ("hira_A", "hira_B")

    def _shapes(self, r):
        return (r, self.in_features), (self.out_features, r)

    def update_layer(self, adapter_name, r, config):
        if r <= 0:
            raise ValueError(f"`r` should be a positive integer value but the value passed is {r}")
        self.r[adapter_name], self.hira_dropout[adapter_name] = r, config.hira_dropout
        shape_a, shape_b = self._shapes(r)
        A, B = nn.Parameter(nn.init.empty(*shape_a)), nn.Parameter(nn.init.empty(*shape_b))
        with no_grad():
            nn.init.normal_(A)
            nn.init.normal_(B)
            self._reset(A, B, r, config.init_weights)
        getattr(self, self._names[0])[adapter_name], getattr(self, self._names[1])[adapter_name] = A, B
        self.set_adapter(self.active_adapters)

    def _reset(self, A, B, r, init_weights):
        if init_weights is True:
            nn.init.kaiming_uniform_(A, a=math.sqrt(5))
            nn.init.zeros_(B)
        elif init_weights == "gaussian":
            nn.init.normal_(A, std=1 / r)
            nn.init.zeros_(B)

    def _available(self):
        return getattr(self, self._names[0])

    def _dropout(self, x, adapter):
        p = self.hira_dropout[adapter]
        return F.dropout(x, p, self.training) if p > 0 else x

    def _mask(self, adapter):
        """B A shaped like the base weight (a Tensor)."""
        A, B = self.hira_A[adapter], self.hira_B[adapter]
        BA = B @ A
        return BA.transpose(0, 1) if self.fan_in_fan_out else BA

    def get_delta_weight(self, adapter):
        """B A laid out like the base weight (an array); the merged weight adds W0 times it."""
        with no_grad():
            return self._mask(adapter).data

    def merge(self, safe_merge=False, adapter_names=None):
        names = [a for a in (adapter_names or self.active_adapters)
                 if a in self._available() and a not in self.merged_adapters]
        if not names:
            return
        W = self.base_layer.weight
        if self._base_weight_before_merge is None:
            self._base_weight_before_merge = W.data.copy()
        merged = W.data + self._base_weight_before_merge * sum(self.get_delta_weight(a) for a in names)
        if safe_merge and not np.isfinite(merged).all():
            raise ValueError(f"NaNs detected in the merged weights. The adapter {names} seems to be broken")
        W.data = merged.astype(W.dtype)
        self.merged_adapters.extend(names)

    def unmerge(self):
        if not self.merged:
            return
        self.base_layer.weight.data = self._base_weight_before_merge
        self._base_weight_before_merge = None
        self.merged_adapters.clear()


class Linear(HiraLayer):
    """HiRA around nn.Linear or GPT-2's Conv1D."""

    def forward(self, x, *args, **kwargs):
        active = self._adapters_to_run(self.hira_A)
        result = self.base_layer(x, *args, **kwargs)
        W = self.base_layer.weight
        W = W.transpose(0, 1) if self.fan_in_fan_out else W  # [out, in]
        for a in active:
            B, A = self.hira_B[a], self.hira_A[a]
            result = result + F.linear(self._dropout(x, a), W * (B @ A))
        return result


class Embedding(HiraLayer):
    """HiRA on nn.Embedding: the looked-up rows of W0 * (B A)^T are added (no padding_idx, as PEFT)."""

    _names = ("hira_embedding_A", "hira_embedding_B")

    def _reset(self, A, B, r, init_weights):
        if init_weights is not False:
            nn.init.zeros_(A)
            nn.init.normal_(B)

    def _mask(self, adapter):
        return (self.hira_embedding_B[adapter] @ self.hira_embedding_A[adapter]).transpose(0, 1)  # [V, d]

    def forward(self, x, *args, **kwargs):
        active = self._adapters_to_run(self.hira_embedding_A)
        result = self.base_layer(x, *args, **kwargs)
        for a in active:
            result = result + F.embedding(x, self.base_layer.weight * self._mask(a))
        return result


class _ConvNd(HiraLayer):
    def __init__(self, base_layer):
        if base_layer.groups > 1:
            raise NotImplementedError(f"HiRA does not support {type(base_layer).__name__} layers with groups > 1 "
                                      f"(got groups={base_layer.groups}). This applies to both the forward pass and "
                                      "to merging.")
        super().__init__(base_layer)

    def _shapes(self, r):
        k = self.base_layer.kernel_size
        return (r, self.in_features, *k), (self.out_features, r, *(1,) * len(k))

    def _mask(self, adapter):
        A, B = self.hira_A[adapter], self.hira_B[adapter]
        W = self.base_layer.weight
        return (B.reshape(self.out_features, -1) @ A.reshape(A.shape[0], -1)).reshape(*W.shape)

    def forward(self, x, *args, **kwargs):
        active = self._adapters_to_run(self.hira_A)
        result = self.base_layer(x, *args, **kwargs)
        base = self.base_layer
        for a in active:  # groups = 1 here (refused above), so the base layer's own conv fits
            result = result + base._conv_forward(self._dropout(x, a), base.weight * self._mask(a), None)
        return result


class Conv1d(_ConvNd):
    """HiRA around nn.Conv1d."""


class Conv2d(_ConvNd):
    """HiRA around nn.Conv2d."""


class Conv3d(_ConvNd):
    """HiRA around nn.Conv3d."""
