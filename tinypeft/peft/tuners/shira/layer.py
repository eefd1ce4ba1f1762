"""SHiRA layers: a trained value shira_weight [n] at n = r (in + out) fixed positions (shira_indices [2, n]: rows,
cols, in row-major order) of the frozen weight:

    delta = scatter(shira_weight * scaling)  [out, in],   y = x (W + sum of the active deltas)^T + bias

The scatter is a gather read the other way: delta.flat = (shira_weight * scaling)[slot] * mask, where slot maps
each of the out*in entries to its value (any value where mask = 0), so getitem's proven backward (scatter-add)
gives d shira_weight[k] = scaling * dW[rows[k], cols[k]]. Merge adds delta to W.
"""
import numpy as np

from .... import functional as F
from .... import nn
from ....creation import generator
from ....tensor import Tensor
from ..tuners_utils import AdapterLayer


class ShiraLayer(AdapterLayer):
    adapter_layer_names = ("shira_weight",)
    other_param_names = ("r", "scaling", "shira_indices", "_slot")

    def __init__(self, base_layer):
        super().__init__(base_layer)  # nn.Linear only
        self.r, self.scaling, self.shira_indices, self._slot = {}, {}, {}, {}
        self.shira_weight = nn.ParameterDict({})
        self.fan_in_fan_out = False

    def update_layer(self, adapter_name, mask, r, config):
        if r <= 0:
            raise ValueError(f"`r` should be a positive integer value but the value passed is {r}")
        n = r * (self.in_features + self.out_features)
        if n > self.in_features * self.out_features:
            raise ValueError(f"The set rank {r} results in more shira params than the total number of params in the "
                             f"base layer {self.in_features * self.out_features} and this is not allowed.")
        self.r[adapter_name], self.scaling[adapter_name] = r, 1.0  # the scale can be changed for inference
        values = generator().standard_normal(n) if not config.init_weights else np.zeros(n)
        self.shira_weight[adapter_name] = nn.Parameter(values.astype(np.float32))
        if mask is not None:
            self.set_indices(adapter_name, np.stack(np.nonzero(np.asarray(mask) == 1)).astype(np.int32))
        self.set_adapter(self.active_adapters)

    def set_indices(self, adapter_name, indices):
        """indices [2, n] (rows, cols) of the trained entries, from the mask or from a saved adapter."""
        indices = np.asarray(indices).astype(np.int64)
        if indices.shape != (2, self.shira_weight[adapter_name].shape[0]):
            raise ValueError(f"The SHiRA indices and weights are not the same dimensions for adapter {adapter_name} "
                             f"in layer {self.base_layer}")
        flat = indices[0] * self.in_features + indices[1]
        slot = np.zeros(self.out_features * self.in_features, np.int64)
        slot[flat] = np.arange(flat.size)
        mask = np.zeros(slot.size, np.float32)
        mask[flat] = 1.0
        self.shira_indices[adapter_name] = indices.astype(np.int32)
        self._slot[adapter_name] = (slot, mask)

    def set_scale(self, adapter, scale):
        if adapter in self.scaling:
            self.scaling[adapter] = scale

    def _delta(self, adapter):
        slot, mask = self._slot[adapter]
        values = self.shira_weight[adapter] * self.scaling[adapter]                   # [n]
        return (values[slot] * Tensor(mask)).reshape(self.out_features, self.in_features)  # [out, in]

    def get_delta_weight(self, adapter):
        return self._delta(adapter).data

    def forward(self, x, *args, **kwargs):
        adapters = self._adapters_to_run(self.shira_weight)
        if not adapters:
            return self.base_layer(x, *args, **kwargs)
        delta = sum(self._delta(adapter) for adapter in adapters)  # [out, in]: the active adapters' entries
        return F.linear(x, self.base_layer.weight + delta, self.base_layer.bias)


class Linear(ShiraLayer):
    """SHiRA around nn.Linear (PEFT supports no other layer type)."""
