"""RandLoRA layers: per adapter randlora_lambda [r, n] and randlora_gamma [n, min] trained; the shared bases
randlora_A [r, 1, min_max] and randlora_B [max_max, n_max, r] (the tuner's buffers) sliced to this layer:

    S = lambda[:, :, None] * A[:, :, :min] * gamma[None]     [r, n, min] -> U = S viewed [r n, min]
    V = B[:max, :n, :] viewed [max, n r]
    min = in:   y = base(x) + ((x U^T) V^T) * s              s = randlora_alpha / r
    min = out:  y = base(x) + ((x V) U) * s

(U's rows run over (r, n) and V's columns over (n, r), as in PEFT.) Elementwise products and matmuls with
constants: proven ops, gradients by autograd (PEFT's hand-written UniqueBaseGrad computes the same ones).
"""
import numpy as np

from .... import functional as F
from .... import nn
from ....creation import generator
from ....tensor import Tensor
from ..tuners_utils import AdapterLayer


def num_bases(min_dim, r):
    return -(-min_dim // r)  # ceil(min / r): enough bases for a full-rank update


class RandLoraLayer(AdapterLayer):
    adapter_layer_names = ("randlora_lambda", "randlora_gamma")
    other_param_names = ("randlora_dropout", "r", "scaling")

    def __init__(self, base_layer, randlora_A, randlora_B, fan_in_fan_out=False):
        super().__init__(base_layer, fan_in_fan_out)
        self.r, self.scaling, self.randlora_dropout = {}, {}, {}
        self.randlora_lambda, self.randlora_gamma = nn.ParameterDict({}), nn.ParameterDict({})
        self.randlora_A, self.randlora_B = randlora_A, randlora_B  # the tuner's shared BufferDicts

    def update_layer(self, adapter_name, r, config):
        if r <= 0:
            raise ValueError(f"`r` should be a positive integer value but the value passed is {r}")
        lo, hi = min(self.in_features, self.out_features), max(self.in_features, self.out_features)
        A, B = self.randlora_A[adapter_name], self.randlora_B[adapter_name]
        if B.shape[0] < hi or A.shape[-1] < lo or A.shape[0] < r or B.shape[-1] < r:
            raise ValueError(f"randlora_A {tuple(A.shape)} / randlora_B {tuple(B.shape)} are too small for this layer "
                             f"(in {self.in_features}, out {self.out_features}, r {r}).")
        self.r[adapter_name], self.randlora_dropout[adapter_name] = r, config.randlora_dropout
        n = num_bases(lo, r)
        lam = np.zeros((r, n), np.float32) if config.init_weights else \
            generator().standard_normal((r, n)).astype(np.float32)
        self.randlora_lambda[adapter_name] = nn.Parameter(lam)
        self.randlora_gamma[adapter_name] = nn.Parameter(np.full((n, lo), 1 / hi, dtype=np.float32))
        self.scaling[adapter_name] = config.randlora_alpha / r
        self.set_adapter(self.active_adapters)

    def _bases(self, adapter):
        """(U [r n, min], V [max, n r]) as Tensors."""
        lam, gamma = self.randlora_lambda[adapter], self.randlora_gamma[adapter]
        r, n = lam.shape
        lo, hi = gamma.shape[1], max(self.in_features, self.out_features)
        A = Tensor(self.randlora_A[adapter].data[:r, :n, :lo])                 # [r, 1, min]
        B = Tensor(lam.xp.ascontiguousarray(self.randlora_B[adapter].data[:hi, :n, :r]))  # [max, n, r]
        U = (lam.reshape(r, n, 1) * A * gamma.reshape(1, n, lo)).reshape(r * n, lo)
        return U, B.reshape(hi, n * r)

    def _update(self, x, adapter):
        U, V = self._bases(adapter)
        if self.in_features <= self.out_features:       # min = in: x -> [.., r n] -> [.., out]
            return F.linear(F.linear(x, U), V)
        return F.linear(F.linear(x, V.transpose(0, 1)), U.transpose(0, 1))  # min = out

    def get_delta_weight(self, adapter):
        return self.delta_of_map(lambda x: self._update(x, adapter) * self.scaling[adapter],
                                 self.randlora_lambda[adapter])

    def adapter_output(self, x, adapter):
        x = F.dropout(x, self.randlora_dropout[adapter], self.training)
        return self._update(x, adapter) * self.scaling[adapter]


class Linear(RandLoraLayer):
    """RandLoRA around nn.Linear or GPT-2's Conv1D."""
