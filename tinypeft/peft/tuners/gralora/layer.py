"""GraLoRA layers: per adapter gralora_A [k, in/k, r] and gralora_B [k, r, out/k] (plus, with hybrid_r, a plain
LoRA gralora_A_general / gralora_B_general). With x cut into k input blocks x_n [in/k]:

    h_n = x_n A_n                              [.., k, r]      (block n's r = k groups of r/k)
    g_j = concat_n (group j of h_n)            [.., k, r]      (the k x k exchange: a transpose of two axes)
    y_j = g_j B_j                              [.., k, out/k]  -> y = base(x) + s (y_0, ..., y_k-1)   s = alpha / (r + hybrid_r)

so output block j sees input block n through A_n's group j and B_j's group n: a rank-(r/k) update per block.
reshape, transpose and batched matmul only (proven ops). delta W is that map applied to the identity.
"""
import math

import numpy as np

from .... import functional as F
from .... import backend, nn
from ....autograd import no_grad
from ..tuners_utils import AdapterLayer


class GraloraLayer(AdapterLayer):
    adapter_layer_names = ("gralora_A", "gralora_B", "gralora_A_general", "gralora_B_general")
    other_param_names = ("r", "hybrid_r", "alpha", "scaling", "gralora_dropout", "gralora_k")

    def __init__(self, base_layer, fan_in_fan_out=False):
        super().__init__(base_layer, fan_in_fan_out, unsupported=NotImplementedError)
        self.r, self.alpha, self.gralora_k, self.hybrid_r, self.scaling, self.gralora_dropout = {}, {}, {}, {}, {}, {}
        self.gralora_A, self.gralora_B = nn.ParameterDict({}), nn.ParameterDict({})
        self.gralora_A_general, self.gralora_B_general = nn.ModuleDict({}), nn.ModuleDict({})

    def update_layer(self, adapter_name, r, config):
        k, hybrid_r = config.gralora_k, config.hybrid_r
        if r <= 0:
            raise ValueError(f"`r` should be a positive integer value but the value passed is {r}")
        if hybrid_r < 0:
            raise ValueError(f"`hybrid_r` should be a non-negative integer value but the value passed is {hybrid_r}")
        for what, n in (("in_features", self.in_features), ("out_features", self.out_features)):
            if n % k != 0:
                raise ValueError(f"{what} should be divisible by gralora_k, but got {n} and {k}")
        self.r[adapter_name], self.alpha[adapter_name], self.gralora_k[adapter_name] = r, config.alpha, k
        self.hybrid_r[adapter_name], self.gralora_dropout[adapter_name] = hybrid_r, config.gralora_dropout
        xp = backend.default_xp()  # the adapter lives where new tensors are made, as each block's a and b below
        A = xp.empty((k, self.in_features // k, r), np.float32)
        B = xp.empty((k, r, self.out_features // k), np.float32)
        with no_grad():
            for n in range(k):  # per block, PEFT's shapes before its transpose: A_n [r, in/k], B_n [out/k, r]
                a = nn.Parameter(nn.init.empty(r, self.in_features // k))
                b = nn.Parameter(nn.init.empty(self.out_features // k, r))
                nn.init.kaiming_uniform_(a, a=math.sqrt(5))
                nn.init.zeros_(b) if config.init_weights else nn.init.kaiming_uniform_(b, a=math.sqrt(5))
                A[n], B[n] = a.data.T, b.data.T
        self.gralora_A[adapter_name], self.gralora_B[adapter_name] = nn.Parameter(A), nn.Parameter(B)
        if hybrid_r > 0:
            ga, gb = nn.Linear(self.in_features, hybrid_r, bias=False), nn.Linear(hybrid_r, self.out_features, bias=False)
            with no_grad():
                nn.init.kaiming_uniform_(ga.weight, a=math.sqrt(5))
                nn.init.zeros_(gb.weight) if config.init_weights else nn.init.kaiming_uniform_(gb.weight, a=math.sqrt(5))
        else:
            ga, gb = nn.Identity(), nn.Identity()
        self.gralora_A_general[adapter_name], self.gralora_B_general[adapter_name] = ga, gb
        self.scaling[adapter_name] = config.alpha / (r + hybrid_r)
        self.set_adapter(self.active_adapters)

    def _update(self, x, adapter):
        """The adapter's output for x [.., in] (before scaling): [.., out]."""
        A, B, k, r = self.gralora_A[adapter], self.gralora_B[adapter], self.gralora_k[adapter], self.r[adapter]
        lead = x.shape[:-1]
        h = x.reshape(*lead, k, 1, self.in_features // k) @ A          # [.., k(n), 1, r]
        h = h.reshape(*lead, k, k, r // k)                              # [.., n, j, r/k]
        h = h.transpose(len(lead), len(lead) + 1).reshape(*lead, k, 1, r)  # [.., j, 1, k * r/k]
        y = (h @ B).reshape(*lead, self.out_features)                   # [.., j, 1, out/k] -> [.., out]
        if self.hybrid_r[adapter] > 0:
            y = y + self.gralora_B_general[adapter](self.gralora_A_general[adapter](x))
        return y

    def get_delta_weight(self, adapter):
        return self.delta_of_map(lambda x: self._update(x, adapter) * self.scaling[adapter], self.gralora_A[adapter])

    def adapter_output(self, x, adapter):
        x = F.dropout(x, self.gralora_dropout[adapter], self.training)
        return self._update(x, adapter) * self.scaling[adapter]


class Linear(GraloraLayer):
    """GraLoRA around nn.Linear or GPT-2's Conv1D."""
