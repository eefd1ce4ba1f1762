"""BEFT layers: per adapter a trained bias beft_bias [1, out] added to the frozen Linear's output,

    y = base(x) + sum over active adapters of beft_bias.flatten()          [.., out]

so d beft_bias = the upstream gradient summed over every row (autograd's broadcast add, a proven op).
Merging adds the vector to the base layer's bias (a layer without a bias cannot merge: PEFT's ValueError).
"""
import warnings

import numpy as np

from .... import nn
from ....creation import generator
from ..tuners_utils import BaseTunerLayer


class BeftLayer(nn.Module, BaseTunerLayer):
    adapter_layer_names = ("beft_bias",)

    def __init__(self, base_layer):
        super().__init__()
        self._init_linear_tuner(base_layer, TypeError(f"Target module {base_layer} is not supported. Currently, "
                                                      "only `torch.nn.Linear` is supported."))
        self.beft_bias = nn.ParameterDict({})

    def update_layer(self, adapter_name, r, config):  # r: None (BEFT has no rank)
        if self.base_layer.bias is None:
            warnings.warn("Detected that the base layer has no bias term. "
                          "Note you cannot merge the BEFT adapter into the base layer.")
        shape = (1, self.out_features)
        value = np.zeros(shape) if config.init_weights else generator().standard_normal(shape)
        self.beft_bias[adapter_name] = nn.Parameter(value.astype(np.float32))
        self.set_adapter(self.active_adapters)

    def merge(self, safe_merge=False, adapter_names=None):
        todo = [a for a in adapter_names or self.active_adapters
                if a in self.beft_bias and a not in self.merged_adapters]
        if todo and self.base_layer.bias is None:
            raise ValueError(f"Base layer has no bias, cannot merge bias adapter {todo[0]}")
        self._merge_adapters(lambda a, b: b + self.beft_bias[a].data.reshape(-1), todo, safe_merge, self.beft_bias,
                             param="bias")

    def unmerge(self):
        self._unmerge_adapters(lambda a, b: b - self.beft_bias[a].data.reshape(-1), param="bias")

    def forward(self, x, *args, **kwargs):
        active = self._adapters_to_run(self.beft_bias)
        result = self.base_layer(x, *args, **kwargs)
        for adapter in active:
            result = result + self.beft_bias[adapter].reshape(-1)
        return result


class BeftLinear(BeftLayer):
    """BEFT around nn.Linear."""
