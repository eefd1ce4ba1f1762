"""DEFT layers: per adapter deft_P [out, r] and (unless PaRa) deft_R [r, in], both trained. With the projector
P_proj = Q_P right^T (relu: Q_P = P, right = relu(P); qr: Q_P = right = qr(P).Q),

    W' = W - P_proj W + s Q_P R = W + Q_P (s R - right^T W)         s = alpha / r, or 1

computed on activations without forming W' (z = x W^T, the base output without its bias):

    y = base(x) - (z right) Q_P^T + s (dropout(x) R^T) Q_P^T                          [.., out]

Matmuls, relu and QR's Q (ops/qr.py derives its backward): autograd gives every gradient. Merging adds
delta = Q_P (s R - right^T W) to W; the factor right^T W [r, in] is taken from the unmerged W and cached
(a non-persistent buffer), so unmerging subtracts exactly what was added, as PEFT does.
"""
import numpy as np

from .... import functional as F
from .... import nn
from ....autograd import no_grad
from ....creation import generator
from ....tensor import Tensor
from ..tuners_utils import BaseTunerLayer, linear_in_out
from ..vera.layer import BufferDict


class DeftLayer(nn.Module, BaseTunerLayer):
    adapter_layer_names = ("deft_P", "deft_R")
    other_param_names = ("deft_r", "deft_decomposition", "deft_init_scale", "deft_para", "deft_scaling",
                         "deft_dropout", "_cached_merge_factor")

    def __init__(self, base_layer, fan_in_fan_out=False):
        super().__init__()
        sizes = linear_in_out(base_layer)
        if sizes is None:
            raise TypeError(f"Unsupported layer type {type(base_layer)}")
        self._init_tuner(base_layer)
        self.in_features, self.out_features = sizes
        self.fan_in_fan_out = fan_in_fan_out
        self.deft_r, self.deft_decomposition, self.deft_init_scale = {}, {}, {}
        self.deft_para, self.deft_scaling, self.deft_dropout = {}, {}, {}
        self.deft_P, self.deft_R = nn.ParameterDict({}), nn.ParameterDict({})
        self._cached_merge_factor = BufferDict(persistent=False)

    def _weight(self):
        """The base weight as [out, in] (Conv1D stores it [in, out])."""
        W = self.base_layer.weight
        return W.T if self.fan_in_fan_out else W

    def update_layer(self, adapter_name, r, config):
        if r <= 0:
            raise ValueError(f"`r` should be a positive integer value but the value passed is {r}")
        r = min(r, self.out_features)  # qr gives at most out orthonormal columns
        self.deft_r[adapter_name], self.deft_decomposition[adapter_name] = r, config.decomposition_method
        self.deft_init_scale[adapter_name], self.deft_para[adapter_name] = config.init_scale, config.para
        self.deft_scaling[adapter_name] = config.alpha / r if config.alpha else 1.0
        self.deft_dropout[adapter_name] = config.deft_dropout
        rng = generator()
        P = rng.standard_normal((self.out_features, r)) * 0.02
        self.deft_P[adapter_name] = nn.Parameter(P.astype(np.float32))
        if not config.para:
            if config.init_weights:  # s R = right^T W: the update starts at zero
                with no_grad():
                    R = self._merge_factor(adapter_name) / self.deft_scaling[adapter_name]
            else:
                R = rng.standard_normal((r, self.in_features)) * (0.02 * config.init_scale)
            self.deft_R[adapter_name] = nn.Parameter(np.asarray(R, dtype=np.float32))
        self.set_adapter(self.active_adapters)

    def _project(self, adapter):
        """(Q_P, right) as Tensors, P_proj = Q_P right^T."""
        P = self.deft_P[adapter]
        if self.deft_decomposition[adapter] == "qr":
            Q = F.qr_q(P)
            return Q, Q
        return P, F.relu(P)

    def _merge_factor(self, adapter):
        """right^T W [r, in] as an array, from the current base weight."""
        with no_grad():
            return (self._project(adapter)[1].T @ self._weight()).data

    def _delta(self, adapter, factor):
        """delta W in the base weight's layout: Q_P (s R - factor), or -Q_P factor for PaRa."""
        with no_grad():
            Q = self._project(adapter)[0].data
        inner = -factor if self.deft_para[adapter] else self.deft_R[adapter].data * self.deft_scaling[adapter] - factor
        delta = Q @ inner
        return delta.T if self.fan_in_fan_out else delta

    def merge(self, safe_merge=False, adapter_names=None):
        names = [a for a in adapter_names or self.active_adapters
                 if a in self.deft_P and a not in self.merged_adapters]
        factors = {a: self._merge_factor(a) for a in names}  # all from the unmerged weight, before any change
        self._merge_adapters(lambda a, W: W + self._delta(a, factors[a]), names, safe_merge, self.deft_P)
        for a in names:
            self._cached_merge_factor[a] = Tensor(factors[a])

    def unmerge(self):
        def unmerged(adapter, W):
            factor = self._cached_merge_factor[adapter].data
            del self._cached_merge_factor[adapter]
            return W - self._delta(adapter, factor)

        self._unmerge_adapters(unmerged)

    def forward(self, x, *args, **kwargs):
        active = self._adapters_to_run(self.deft_P)
        result = self.base_layer(x, *args, **kwargs)
        if not active:
            return result
        bias = self.base_layer.bias
        base_product = result if bias is None else result - bias  # x W^T
        for adapter in active:
            Q, right = self._project(adapter)
            result = result - (base_product @ right) @ Q.T
            if not self.deft_para[adapter]:
                R = self.deft_R[adapter] * self.deft_scaling[adapter]
                result = result + F.linear(self._dropout(x, self.deft_dropout[adapter]), R) @ Q.T
        return result


class DeftLinear(DeftLayer):
    """DEFT around nn.Linear or GPT-2's Conv1D."""
