"""VeRA layers: per adapter two trained vectors, vera_lambda_d [r] and vera_lambda_b [out], around frozen shared
random projections vera_A [r, in_max] and vera_B [out_max, r] (sliced to this layer's sizes):

    y = base(x) + lambda_b * ((lambda_d * (dropout(x) @ A^T)) @ B^T)        x [.., in] -> [.., r] -> [.., out]

Only elementwise products and matmuls with constants, so autograd derives the gradients from proven ops:
    d lambda_b = sum_rows(g * v),  v = (lambda_d * xA^T) B^T;      d lambda_d = sum_rows((g * lambda_b) B * xA^T)
Merge: delta W = (lambda_b[:, None] * B) @ (lambda_d[:, None] * A)   [out, in] (transposed for Conv1D).
"""
import numpy as np

from .... import nn
from ....creation import generator
from ....tensor import Tensor
from ..tuners_utils import AdapterLayer


class BufferDict(nn.Module):
    """Tensors by adapter name, kept as buffers (state, not trained): PEFT's BufferDict. persistent=False keeps
    them out of the state dict (a cache that can be computed again)."""

    def __init__(self, persistent=True):
        super().__init__()
        self.persistent = persistent

    def __setitem__(self, key, value):
        self.register_buffer(key, value, persistent=self.persistent)

    def __getitem__(self, key):
        return self._buffers[key]

    def __contains__(self, key):
        return key in self._buffers

    def __len__(self):
        return len(self._buffers)

    def __delitem__(self, key):
        del self._buffers[key]

    def keys(self):
        return self._buffers.keys()

    def values(self):
        return self._buffers.values()

    def items(self):
        return self._buffers.items()


class VeraLayer(AdapterLayer):
    adapter_layer_names = ("vera_lambda_b", "vera_lambda_d")
    other_param_names = ("r", "vera_dropout")

    def __init__(self, base_layer, vera_A, vera_B, fan_in_fan_out=False):
        super().__init__(base_layer, fan_in_fan_out)
        self.r = {}
        self.vera_dropout = nn.ModuleDict({})
        self.vera_lambda_b, self.vera_lambda_d = nn.ParameterDict({}), nn.ParameterDict({})
        self.vera_A, self.vera_B = vera_A, vera_B  # the tuner's shared BufferDicts (one object, many paths)

    def update_layer(self, adapter_name, r, vera_dropout, init_weights, d_initial):
        if r <= 0:
            raise ValueError(f"`r` should be a positive integer value but the value passed is {r}")
        A, B = self.vera_A[adapter_name], self.vera_B[adapter_name]
        if A.shape[1] < self.in_features or B.shape[0] < self.out_features or A.shape[0] < r:
            raise ValueError(f"vera_A {tuple(A.shape)} / vera_B {tuple(B.shape)} are too small for this layer "
                             f"(in {self.in_features}, out {self.out_features}, r {r}).")
        self.r[adapter_name] = r
        self.vera_dropout[adapter_name] = nn.Dropout(vera_dropout) if vera_dropout > 0 else nn.Identity()
        if init_weights:  # lambda_b = 0: a no-op start
            b, d = np.zeros(self.out_features, np.float32), np.full(r, d_initial, np.float32)
        else:
            b, d = np.ones(self.out_features, np.float32), generator().standard_normal(r).astype(np.float32)
        self.vera_lambda_b[adapter_name], self.vera_lambda_d[adapter_name] = nn.Parameter(b), nn.Parameter(d)
        self.set_adapter(self.active_adapters)

    def _sliced(self, adapter):
        A = self.vera_A[adapter].data[: self.r[adapter], : self.in_features]   # [r, in]
        B = self.vera_B[adapter].data[: self.out_features, : self.r[adapter]]  # [out, r]
        return A, B

    def get_delta_weight(self, adapter):
        A, B = self._sliced(adapter)
        b, d = self.vera_lambda_b[adapter].data, self.vera_lambda_d[adapter].data
        delta = (b[:, None] * B) @ (d[:, None] * A)  # [out, in]
        return delta.T if self.fan_in_fan_out else delta

    def adapter_output(self, x, adapter):
        A, B = self._sliced(adapter)
        h = self.vera_dropout[adapter](x) @ Tensor(A.T)                   # [.., in] -> [.., r]
        h = (h * self.vera_lambda_d[adapter]) @ Tensor(B.T)               # -> [.., out]
        return h * self.vera_lambda_b[adapter]


class Linear(VeraLayer):
    """VeRA around nn.Linear (or GPT-2's Conv1D with fan_in_fan_out=True)."""
