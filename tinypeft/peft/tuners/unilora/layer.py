"""UniLoRA layers: LoRA whose factors are gathered from the tuner's shared trained vector theta_d [L]:

    A = theta_d[idx_A] * scale_A    [r, in]        B = theta_d[idx_B] * scale_B    [out, r]
    y = base(x) + (dropout(x) @ A^T) @ B^T         [.., in] -> [.., r] -> [.., out]

theta_d[idx] is getitem with an integer array, whose proven backward scatter-adds: d theta_d[k] = sum over the
(layer, position) pairs that read entry k of scale * dA (or dB). Merge: delta W = B @ A (transposed for Conv1D).
"""
import numpy as np

from .... import nn
from ....tensor import Tensor
from ..tuners_utils import FactorsLayer
from ..vera.layer import BufferDict


class UniLoraLayer(FactorsLayer):
    adapter_layer_names = ("unilora_theta_d",)
    dropout_name, held_name = "unilora_dropout", "unilora_indices_A"
    other_param_names = ("r", "unilora_indices_A", "unilora_indices_B", "unilora_scales_A", "unilora_scales_B",
                         "unilora_dropout")

    def __init__(self, base_layer, unilora_theta_d, fan_in_fan_out=False):
        super().__init__(base_layer, fan_in_fan_out)
        self.r = {}
        self.unilora_dropout = nn.ModuleDict({})
        # rebuilt from proj_seed, so not in the state dict (PEFT's save_indices=False)
        self.unilora_indices_A, self.unilora_indices_B = BufferDict(persistent=False), BufferDict(persistent=False)
        self.unilora_scales_A, self.unilora_scales_B = BufferDict(persistent=False), BufferDict(persistent=False)
        self.unilora_theta_d = unilora_theta_d  # the tuner's ParameterDict (one object, many paths)

    def update_layer(self, adapter_name, config):
        if config.r <= 0:
            raise ValueError(f"`r` {config.r} should be a positive integer value")
        self.r[adapter_name] = config.r
        p = config.unilora_dropout
        self.unilora_dropout[adapter_name] = nn.Dropout(p) if p > 0 else nn.Identity()
        # placeholders of the right shapes; the tuner assigns all layers' indices at once (set_indices)
        self.set_indices(adapter_name, np.zeros((config.r, self.in_features), np.int64),
                         np.zeros((self.out_features, config.r), np.int64), np.ones(1, np.float32))
        self.set_adapter(self.active_adapters)

    def set_indices(self, adapter_name, indices_A, indices_B, inv_sqrt_counts):
        """Which theta_d entry each factor entry reads, and its scale 1/sqrt(count of that entry)."""
        self.unilora_indices_A[adapter_name], self.unilora_indices_B[adapter_name] = Tensor(indices_A), Tensor(indices_B)
        self.unilora_scales_A[adapter_name] = Tensor(inv_sqrt_counts[indices_A])
        self.unilora_scales_B[adapter_name] = Tensor(inv_sqrt_counts[indices_B])

    def lora_matrices(self, adapter):
        theta = self.unilora_theta_d[adapter]
        A = theta[self.unilora_indices_A[adapter]] * self.unilora_scales_A[adapter]  # [r, in]
        B = theta[self.unilora_indices_B[adapter]] * self.unilora_scales_B[adapter]  # [out, r]
        return A, B


class Linear(UniLoraLayer):
    """UniLoRA around nn.Linear (or GPT-2's Conv1D with fan_in_fan_out=True)."""
