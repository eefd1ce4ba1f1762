"""Super-Tuning layers: per adapter supertuning_values [k] (trained) at flat positions supertuning_indices [k]
(int32, a buffer saved unless save_precomputed_indices=False), and in Supra mode a LoRA supertuning_lora_A /
supertuning_lora_B (Linear without bias) scaled by lora_alpha / r:

    W' = W + scatter(values at indices)             (the k positions of W's largest |entries|, topk's order)
    y = linear(x, W', b) + (lora_alpha / r) B(A(dropout(x)))

The scatter is a gather from [0, values] by a position map (each position taken once), so its gradient is the
gather's scatter-add: d values = dW'[indices]. Proven ops only. Merging adds the same sparse (and LoRA) delta.
"""
import math

import numpy as np

from .... import functional as F
from .... import nn
from ....autograd import no_grad
from ....creation import generator
from ....ops.shape import cat
from ....tensor import Tensor
from ..tuners_utils import BaseTunerLayer
from ..vera.layer import BufferDict


class SupertuningLayer(nn.Module, BaseTunerLayer):
    adapter_layer_names = ("supertuning_values", "supertuning_lora_A", "supertuning_lora_B")
    other_param_names = ("supertuning_indices", "supertuning_rank", "supertuning_lora_alpha",
                         "supertuning_lora_dropout")

    def __init__(self, base_layer, save_precomputed_indices=True):
        super().__init__()
        self._init_linear_tuner(base_layer, TypeError(f"Target module {base_layer} is not supported. Currently, "
                                                      "only `torch.nn.Linear` is supported."))
        self.supertuning_values = nn.ParameterDict({})
        self.supertuning_indices = BufferDict(persistent=save_precomputed_indices)
        self.supertuning_rank, self.supertuning_lora_alpha, self.supertuning_lora_dropout = {}, {}, {}
        self.supertuning_lora_A, self.supertuning_lora_B = nn.ModuleDict({}), nn.ModuleDict({})

    def update_layer(self, adapter_name, r, config):
        scores = np.abs(self.base_layer.weight.data).reshape(-1)
        k = int(scores.size * (1 - config.sparsity))
        if k < 1:
            raise ValueError(f"sparsity={config.sparsity} leaves no trainable entries for a weight with {scores.size} "
                             "elements — no parameter would be adapted. Lower the sparsity so at least one entry is "
                             "trainable.")
        order = np.argsort(-scores if config.select_top else scores, kind="stable")  # torch.topk's sorted order
        self.supertuning_indices[adapter_name] = Tensor(order[:k].astype(np.int32))
        values = np.zeros(k) if config.init_weights else generator().standard_normal(k)
        self.supertuning_values[adapter_name] = nn.Parameter(values.astype(np.float32))
        self.supertuning_rank[adapter_name] = r or 0
        self.supertuning_lora_alpha[adapter_name] = float(config.lora_alpha) if r else 0.0
        if r:
            A, B = nn.Linear(self.in_features, r, bias=False), nn.Linear(r, self.out_features, bias=False)
            with no_grad():
                nn.init.kaiming_uniform_(A.weight, a=math.sqrt(5))
                if config.init_weights:
                    nn.init.zeros_(B.weight)
                else:
                    nn.init.kaiming_uniform_(B.weight, a=math.sqrt(5))
            self.supertuning_lora_A[adapter_name], self.supertuning_lora_B[adapter_name] = A, B
            self.supertuning_lora_dropout[adapter_name] = config.lora_dropout
        self.set_adapter(self.active_adapters)

    def _sparse_delta(self, adapter):
        """The sparse delta [out, in] as a Tensor: values gathered into place, zeros elsewhere."""
        values, idx = self.supertuning_values[adapter], self.supertuning_indices[adapter].data.astype(np.int64)
        where = np.zeros(self.out_features * self.in_features, dtype=np.int64)
        where[idx] = 1 + np.arange(idx.size)
        padded = cat([Tensor(np.zeros(1, dtype=values.dtype)), values])
        return padded[where].reshape(self.out_features, self.in_features)

    def _lora(self, adapter, x):
        scale = self.supertuning_lora_alpha[adapter] / self.supertuning_rank[adapter]
        return self.supertuning_lora_B[adapter](self.supertuning_lora_A[adapter](x)) * scale

    def get_delta_weight(self, adapter):
        with no_grad():
            delta = self._sparse_delta(adapter).data
            if self.supertuning_rank[adapter]:
                delta = delta + self._lora(adapter, Tensor(np.eye(self.in_features, dtype=delta.dtype))).data.T
        return delta

    def forward(self, x, *args, **kwargs):
        active = self._adapters_to_run(self.supertuning_values)
        if not active:
            return self.base_layer(x, *args, **kwargs)
        weight = self.base_layer.weight
        for adapter in active:
            weight = weight + self._sparse_delta(adapter)
        result = F.linear(x, weight, self.base_layer.bias)
        for adapter in active:
            if self.supertuning_rank[adapter]:
                result = result + self._lora(adapter, self._dropout(x, self.supertuning_lora_dropout[adapter]))
        return result


class SupertuningLinear(SupertuningLayer):
    """Super-Tuning around nn.Linear."""
