"""VeRA layers: per adapter two trained vectors, vera_lambda_d [r] and vera_lambda_b [out], around frozen shared
random projections vera_A [r, in_max] and vera_B [out_max, r] (sliced to this layer's sizes):

    y = base(x) + lambda_b * ((lambda_d * (dropout(x) @ A^T)) @ B^T)        x [.., in] -> [.., r] -> [.., out]

Only elementwise products and matmuls with constants, so autograd derives the gradients from proven ops:
    d lambda_b = sum_rows(g * v),  v = (lambda_d * xA^T) B^T;      d lambda_d = sum_rows((g * lambda_b) B * xA^T)
Merge: delta W = (lambda_b[:, None] * B) @ (lambda_d[:, None] * A)   [out, in] (transposed for Conv1D).

PVeRA (pvera/layer.py) is this layer under its own names (pvera_lambda_b, pvera_A, ...) with a different middle
step; `method` is the prefix of every attribute name, as PEFT spells them.
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
    method = "vera"
    adapter_layer_names = ("vera_lambda_b", "vera_lambda_d")
    other_param_names = ("r", "vera_dropout")
    a_rows = 1  # the shared A has a_rows * r rows, and lambda_d as many entries (PVeRA: 2, a mean and a log-variance)

    def __init__(self, base_layer, A, B, fan_in_fan_out=False):
        super().__init__(base_layer, fan_in_fan_out)
        self.r = {}
        setattr(self, f"{self.method}_dropout", nn.ModuleDict({}))
        for name in self.adapter_layer_names:
            setattr(self, name, nn.ParameterDict({}))
        # the tuner's shared BufferDicts (one object, many paths)
        setattr(self, f"{self.method}_A", A)
        setattr(self, f"{self.method}_B", B)

    def _vectors(self, adapter):
        """(lambda_b [out], lambda_d [a_rows * r]) Parameters of one adapter."""
        return tuple(getattr(self, name)[adapter] for name in self.adapter_layer_names)

    def update_layer(self, adapter_name, r, config):
        if r <= 0:
            raise ValueError(f"`r` should be a positive integer value but the value passed is {r}")
        A, B = getattr(self, f"{self.method}_A")[adapter_name], getattr(self, f"{self.method}_B")[adapter_name]
        if A.shape[1] < self.in_features or B.shape[0] < self.out_features or A.shape[0] < self.a_rows * r:
            raise ValueError(f"{self.method}_A {tuple(A.shape)} / {self.method}_B {tuple(B.shape)} are too small for "
                             f"this layer (in {self.in_features}, out {self.out_features}, r {r}).")
        self.r[adapter_name] = r
        p = getattr(config, f"{self.method}_dropout")
        getattr(self, f"{self.method}_dropout")[adapter_name] = nn.Dropout(p) if p > 0 else nn.Identity()
        n = self.a_rows * r
        if config.init_weights:  # lambda_b = 0: a no-op start
            b, d = np.zeros(self.out_features, np.float32), np.full(n, config.d_initial, np.float32)
        else:
            b, d = np.ones(self.out_features, np.float32), generator().standard_normal(n).astype(np.float32)
        for name, value in zip(self.adapter_layer_names, (b, d)):
            getattr(self, name)[adapter_name] = nn.Parameter(value)
        self.set_adapter(self.active_adapters)

    def _sliced(self, adapter):
        """A [a_rows * r, in] and B [out, r], this layer's corner of the shared projections."""
        r = self.r[adapter]
        A = getattr(self, f"{self.method}_A")[adapter].data[: self.a_rows * r, : self.in_features]
        B = getattr(self, f"{self.method}_B")[adapter].data[: self.out_features, :r]
        return A, B

    def get_delta_weight(self, adapter):
        A, B = self._sliced(adapter)
        b, d = (v.data for v in self._vectors(adapter))
        r = self.r[adapter]
        delta = (b[:, None] * B) @ (d[:r, None] * A[:r])  # [out, in]; PVeRA merges its mean half
        return delta.T if self.fan_in_fan_out else delta

    def _middle(self, adapter, h):
        """[.., a_rows * r] -> [.., r] between the two projections: VeRA scales by lambda_d (PVeRA samples)."""
        return h * self._vectors(adapter)[1]

    def adapter_output(self, x, adapter):
        A, B = self._sliced(adapter)
        h = getattr(self, f"{self.method}_dropout")[adapter](x) @ Tensor(A.T)   # [.., in] -> [.., a_rows * r]
        h = self._middle(adapter, h) @ Tensor(B.T)                              # -> [.., r] -> [.., out]
        return h * self._vectors(adapter)[0]


class Linear(VeraLayer):
    """VeRA around nn.Linear (or GPT-2's Conv1D with fan_in_fan_out=True)."""
