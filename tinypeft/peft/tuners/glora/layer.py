"""GLoRA layers: per adapter five paths glora_A..glora_E (sub-modules, PEFT's names), each giving a Tensor:

    GloraLoraPath    Xd [rows, r], Xu [r, cols]  ->  Xd @ Xu
    GloraVectorPath  X [features, 1] (or [features])  ->  X
    GloraScalarPath  X [1]  ->  X[0]
    GloraEmptyPath   a zeros buffer (saved, as PEFT's register_buffer does)

    W_eff = W + W * A + B          [out, in]     (A, B broadcast to [out, in])
    b_eff = b + b * D + E + W @ C  [out]         (C [in, 1]; only when the base layer has a bias)
    y = base(x) + sum over active adapters of (linear(x, W_eff, b_eff) - base(x))

Only products, sums and matmuls of Tensors, so autograd derives every gradient from proven ops
(d A = W * dW_eff, d B = dW_eff, d C = W^T db_eff, d D = b * db_eff, d E = db_eff).
Merging sets W <- W0 + sum_i (W0 * A_i + B_i) (and the bias alike), always from W0: merging again first undoes
the earlier merges, and unmerging solves W0 = (W - sum B_i) / (1 + sum A_i), as PEFT does.
"""
import math

import numpy as np

from .... import functional as F
from .... import nn
from ....autograd import no_grad
from ....tensor import Tensor
from ..tuners_utils import BaseTunerLayer


class GloraLoraPath(nn.Module):
    def __init__(self, out_features, in_features, r, init_weights=True):
        super().__init__()
        self.Xd = nn.Parameter(np.zeros((out_features, r), dtype=np.float32))
        self.Xu = nn.Parameter(np.zeros((r, in_features), dtype=np.float32))
        with no_grad():
            nn.init.kaiming_uniform_(self.Xu, a=math.sqrt(5))
            if not init_weights:
                nn.init.kaiming_uniform_(self.Xd, a=math.sqrt(5))

    def forward(self):
        return self.Xd @ self.Xu


class GloraVectorPath(nn.Module):
    def __init__(self, features, is_column=True, init_weights=True):
        super().__init__()
        self.X = nn.Parameter(np.zeros((features, 1) if is_column else (features,), dtype=np.float32))
        if not init_weights:  # PEFT: Kaiming-uniform of X, a row vector seen as [1, features]
            fan_in = 1 if is_column else features
            bound = 1 / math.sqrt(fan_in)
            with no_grad():
                nn.init.uniform_(self.X, -bound, bound)

    def forward(self):
        return self.X


class GloraScalarPath(nn.Module):
    def __init__(self, init_weights=True):
        super().__init__()
        self.X = nn.Parameter(np.zeros(1, dtype=np.float32))
        if not init_weights:
            with no_grad():
                nn.init.normal_(self.X, 0.0, 0.02)

    def forward(self):
        return self.X[0]


class GloraEmptyPath(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.register_buffer("zeros", Tensor(np.zeros(shape, dtype=np.float32)))

    def forward(self):
        return self.zeros


def _paths(config, out_features, in_features, r, has_bias):
    """The five paths of one adapter, as PEFT chooses them from the config."""
    init = config.init_weights
    make_ab = {"lora": lambda: GloraLoraPath(out_features, in_features, r, init),
               "vector": lambda: GloraVectorPath(out_features, True, init),
               "constant": lambda: GloraScalarPath(init),
               "none": lambda: GloraEmptyPath((out_features, in_features))}[config.config_A_B]
    make_c = {"lora": lambda: GloraLoraPath(in_features, 1, r, init),
              "vector": lambda: GloraVectorPath(in_features, True, init)}.get(config.config_C)
    make_de = {"vector": lambda: GloraVectorPath(out_features, False, init),
               "constant": lambda: GloraScalarPath(init)}.get(config.config_D_E)
    if not has_bias or make_c is None:
        make_c = lambda: GloraEmptyPath((in_features, 1))  # noqa: E731
    if not has_bias or make_de is None:
        make_de = lambda: GloraEmptyPath((out_features,))  # noqa: E731
    return make_ab(), make_ab(), make_c(), make_de(), make_de()


class GloraLayer(nn.Module, BaseTunerLayer):
    adapter_layer_names = ("glora_A", "glora_B", "glora_C", "glora_D", "glora_E")
    other_param_names = ("r",)

    def __init__(self, base_layer):
        super().__init__()
        self._init_tuner(base_layer)
        if type(base_layer) is not nn.Linear:
            raise ValueError(f"Target module {base_layer} is not a plain torch.nn.Linear (after unwrapping); "
                             "GLoRA does not support this layer type.")
        self.r = {}
        for name in self.adapter_layer_names:
            setattr(self, name, nn.ModuleDict({}))
        self.in_features, self.out_features = base_layer.in_features, base_layer.out_features

    def update_layer(self, adapter_name, r, config):
        self.r[adapter_name] = r
        paths = _paths(config, self.out_features, self.in_features, r, self.base_layer.bias is not None)
        for name, path in zip(self.adapter_layer_names, paths):
            getattr(self, name)[adapter_name] = path
        self.set_adapter(self.active_adapters)

    def _effective(self, adapter, W, b):
        """(W_eff, b_eff) of one adapter from the base W [out, in] and b [out] (Tensors)."""
        A, B, C, D, E = (getattr(self, name)[adapter]() for name in self.adapter_layer_names)
        w_eff = W + W * A + B
        if b is None:
            return w_eff, None
        return w_eff, b + b * D + E + (W @ C).reshape(-1)

    def forward(self, x, *args, **kwargs):
        active = self._adapters_to_run(self.glora_A)
        base = self.base_layer(x, *args, **kwargs)
        result = base
        for adapter in active:
            w_eff, b_eff = self._effective(adapter, self.base_layer.weight, self.base_layer.bias)
            result = result + F.linear(x, w_eff, b_eff)
        if active:
            result = result - len(active) * base
        return result

    def _set_base(self, W, b):
        with no_grad():
            self.base_layer.weight.data = W.astype(self.base_layer.weight.dtype)
            if b is not None:
                self.base_layer.bias.data = b.astype(self.base_layer.bias.dtype)

    def _path_values(self, adapter):
        with no_grad():
            return [getattr(self, name)[adapter]().data for name in self.adapter_layer_names]

    def merge(self, safe_merge=False, adapter_names=None):
        names = [a for a in (adapter_names or self.active_adapters)
                 if a in self.glora_A and a not in self.merged_adapters]
        if not names:
            return
        previous = list(self.merged_adapters)
        if previous:
            self.unmerge()  # every merge starts from W0 (see the module docstring)
        W0 = self.base_layer.weight.data
        b0 = None if self.base_layer.bias is None else self.base_layer.bias.data
        W, b = W0.copy(), None if b0 is None else b0.copy()
        for adapter in previous + names:
            A, B, C, D, E = self._path_values(adapter)
            W = W + (W0 * A + B)
            if b0 is not None:
                b = b + (b0 * D + E + (W0 @ C).reshape(-1))
        if safe_merge and not (np.isfinite(W).all() and (b is None or np.isfinite(b).all())):
            raise ValueError(f"NaNs detected in the merged weights. The adapter {', '.join(previous + names)} "
                             "seems to be broken")
        self._set_base(W, b)
        self.merged_adapters.extend(previous + names)

    def unmerge(self):
        merged = [a for a in self.merged_adapters if a in self.glora_A]
        if not merged:
            return
        values = [self._path_values(a) for a in merged]
        W = self.base_layer.weight.data
        W0 = (W - sum(v[1] for v in values)) / (1.0 + sum(v[0] for v in values))
        b0 = None
        if self.base_layer.bias is not None:
            b = self.base_layer.bias.data
            wc = sum((W0 @ v[2]).reshape(-1) for v in values)
            b0 = (b - sum(v[4] for v in values) - wc) / (1.0 + sum(v[3] for v in values))
        self._set_base(W0, b0)
        self.merged_adapters.clear()


class GloraLinear(GloraLayer):
    """GLoRA around nn.Linear."""
