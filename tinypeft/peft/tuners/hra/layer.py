"""HRA layers: per adapter r Householder vectors `hra_u` [in', r] (in' = in for Linear, in*k*k for Conv2d).

    R = H_1 ... H_r,  H_i = I - 2 v_i v_i^T,  v_i = u_i / ||u_i||          y = x (W R)^T + b   (conv: W viewed [out, in'])

R is built as R <- R - 2 (R v_i) v_i^T, from mul, matmul, sum and sqrt (proven ops), so autograd gives
d u_i through the normalisation too. R is orthogonal, so unmerging multiplies by R^T = H_r ... H_1.
apply_GS: v_i orthonormalised by Gram-Schmidt first; then R = I - 2 V V^T (symmetric: its own inverse).
"""
import math
import warnings

import numpy as np

from .... import functional as F
from .... import nn
from ....autograd import no_grad
from ....tensor import Tensor
from ..tuners_utils import BaseTunerLayer


class HRALayer(nn.Module, BaseTunerLayer):
    adapter_layer_names = ("hra_u",)
    other_param_names = ("hra_r", "hra_apply_GS")

    def __init__(self, base_layer):
        super().__init__()
        self._init_tuner(base_layer)
        self.hra_r, self.hra_apply_GS = {}, {}
        self.hra_u = nn.ParameterDict({})
        if isinstance(base_layer, nn.Linear):
            self.in_features, self.out_features = base_layer.in_features, base_layer.out_features
            self.dim = self.in_features
        elif isinstance(base_layer, nn.Conv2d):
            if base_layer.groups > 1:
                raise NotImplementedError(f"HRA does not support Conv2d layers with groups > 1 "
                                          f"(got groups={base_layer.groups}).")
            self.in_features, self.out_features = base_layer.in_channels, base_layer.out_channels
            self.dim = self.in_features * base_layer.kernel_size[0] * base_layer.kernel_size[0]
        else:
            raise TypeError(f"HRA is not implemented for base layers of type {type(base_layer).__name__}")

    def update_layer(self, adapter_name, r, config):
        if r <= 0:
            raise ValueError(f"`r` should be a positive integer value but the value passed is {r}")
        self.hra_r[adapter_name], self.hra_apply_GS[adapter_name] = r, config.apply_GS
        u = nn.Parameter(nn.init.empty(self.dim, r))
        with no_grad():
            if config.init_weights and r % 2 == 0:  # each column twice: the reflections cancel in pairs, R = I
                half = nn.Parameter(nn.init.empty(self.dim, r // 2))
                nn.init.kaiming_uniform_(half, a=math.sqrt(5))
                u = nn.Parameter(np.repeat(half.data, 2, axis=1))
            else:
                if config.init_weights:
                    warnings.warn("The symmetric initialization can NOT be performed when r is odd!")
                nn.init.kaiming_uniform_(u, a=math.sqrt(5))
        self.hra_u[adapter_name] = u
        self.set_adapter(self.active_adapters)

    def get_delta_weight(self, adapter, reverse=False):
        """R [dim, dim] as a Tensor (the product of the reflections; reversed order for unmerging)."""
        u, r = self.hra_u[adapter], self.hra_r[adapter]
        eye = Tensor(np.eye(self.dim, dtype=u.dtype))
        if self.hra_apply_GS[adapter]:
            vs = []
            for i in range(r):
                ui = u[:, i:i + 1]                                            # [dim, 1]
                for v in vs:
                    ui = ui - (v.T @ ui) * v
                vs.append(ui / (ui * ui).sum().sqrt())
            V = vs[0] if r == 1 else _hcat(vs)                                # [dim, r]
            return eye - 2 * (V @ V.T)
        v = u / (u * u).sum(0, keepdim=True).sqrt()                           # unit columns
        R = eye
        for i in (range(r - 1, -1, -1) if reverse else range(r)):
            vi = v[:, i:i + 1]
            R = R - 2 * ((R @ vi) @ vi.T)
        return R

    def _weight(self, adapters):
        """W R_1 R_2 ... for the given adapters, viewed [out, dim] and shaped back like the base weight."""
        W = self.base_layer.weight
        R = None
        for adapter in adapters:
            d = self.get_delta_weight(adapter)
            R = d if R is None else R @ d
        return self._rotated(W, R)

    def forward(self, x, *args, **kwargs):
        active = self._adapters_to_run(self.hra_u)
        if not active:
            return self.base_layer(x, *args, **kwargs)
        W, b = self._weight(active), self.base_layer.bias
        if isinstance(self.base_layer, nn.Conv2d):  # PEFT passes only the padding (stride 1)
            return F.conv2d(x, W, b, 1, self.base_layer.padding[0])
        return F.linear(x, W, b)

    def _rotated(self, W, R):
        """W (a Tensor or an array) viewed [out, dim], times R, shaped back like W."""
        return (W.reshape(self.out_features, self.dim) @ R).reshape(*W.shape)

    def merge(self, safe_merge=False, adapter_names=None):
        self._merge_adapters(lambda a, W: self._rotated(W, self.get_delta_weight(a).data), adapter_names,
                             safe_merge, self.hra_u)

    def unmerge(self):
        self._unmerge_adapters(lambda a, W: self._rotated(W, self.get_delta_weight(a, reverse=True).data))


def _hcat(columns):
    """[dim, 1] columns side by side, as a sum of placements (no concat op needed): [dim, r]."""
    r = len(columns)
    out = None
    for i, c in enumerate(columns):
        e = np.zeros((1, r), dtype=c.dtype)
        e[0, i] = 1
        term = c @ Tensor(e)
        out = term if out is None else out + term
    return out


class HRALinear(HRALayer):
    """HRA around nn.Linear."""


class HRAConv2d(HRALayer):
    """HRA around nn.Conv2d (kernel viewed [out, in * k * k])."""
