"""MiSS layers: per adapter one trained block `miss_block` added to each r-column slice of W [out, in].

Default (block B [r, out]): W'[o, j*r + c] = W[o, j*r + c] + B[c, o], so without touching W

    y = base(x) + (sum_j x[.., j*r : (j+1)*r]) @ B          x [.., in] -> [.., in/r, r] -> [.., r] -> [.., out]

(in not divisible by r: x is zero-padded on the right to a multiple of r, as PEFT does; merging then adds
the first in % r rows of B^T to the last columns.) "mini": B [r, mini_r] tiled out/mini_r times along out.
"bat" (B [out/r, r, r]): delta's [r, r] blocks are W_io @ B_o + B_o (W_io the weight's block), the layer runs
on W + delta = blocks W_io (I + B_o) + B_o, and unmerging solves W = (W' - B)(I + B)^-1. All gradients come from reshape, sum, mul and matmul (proven ops).
"""
import math

import numpy as np

from .... import functional as F
from .... import nn
from ....autograd import no_grad
from ....tensor import Tensor
from ..tuners_utils import BaseTunerLayer


class MissLayer(nn.Module, BaseTunerLayer):
    adapter_layer_names = ("miss_block",)
    other_param_names = ("miss_r", "miss_dropout", "miss_mini_r")

    def __init__(self, base_layer):
        super().__init__()
        self._init_tuner(base_layer)
        if not isinstance(base_layer, nn.Linear):
            raise ValueError(f"Target module {type(base_layer).__name__} is not supported. Currently, only "
                             "`torch.nn.Linear` is supported.")
        self.in_features, self.out_features = base_layer.in_features, base_layer.out_features
        self.miss_r, self.miss_mini_r = {}, {}
        self.miss_dropout = nn.ModuleDict({})
        self.miss_block = nn.ParameterDict({})
        self.miss_fn = True

    def update_layer(self, adapter_name, r, config):
        if r <= 0:
            raise ValueError(f"`r` should be a positive integer value but the value passed is {r}")
        if r > self.in_features:
            raise ValueError(f"`r` ({r}) must be less than or equal to in_features ({self.in_features})")
        init = config.init_weights
        self.miss_fn = init
        self.miss_r[adapter_name], self.miss_mini_r[adapter_name] = r, config.mini_r
        self.miss_dropout[adapter_name] = nn.Dropout(config.miss_dropout) if config.miss_dropout > 0 else nn.Identity()
        if init == "bat":
            if self.in_features % r or self.out_features % r:
                raise ValueError("The weight matrix must be fully divisible into [r, r] blocks.")
            shape = (self.out_features // r, r, r)
        elif init == "mini":
            if self.out_features % config.mini_r:
                raise ValueError("mini_r is divided along the out_features dimension: out_features must be "
                                 f"divisible by mini_r ({self.out_features} % {config.mini_r} != 0).")
            shape = (r, config.mini_r)
        else:
            shape = (r, self.out_features)
        self.miss_block[adapter_name] = nn.Parameter(np.zeros(shape, np.float32))
        if init is False:
            with no_grad():
                nn.init.kaiming_uniform_(self.miss_block[adapter_name], a=math.sqrt(5))
        self.set_adapter(self.active_adapters)

    def _block(self, adapter):
        B = self.miss_block[adapter]
        if self.miss_fn == "mini":  # [r, mini_r] tiled to [r, out]
            k = self.out_features // self.miss_mini_r[adapter]
            B = (B.reshape(B.shape[0], 1, B.shape[1]) * Tensor(np.ones((1, k, 1), np.float32))).reshape(B.shape[0], -1)
        return B

    def _bat_delta(self, adapter, W):
        """delta[o*r + a, i*r + c] = (W_io @ B_o + B_o)[a, c], with W_io W's [r, r] block (o, i)."""
        B = self.miss_block[adapter]                                   # [O, r, r]
        O, r = B.shape[0], B.shape[1]
        I = W.shape[1] // r
        Wb = W.reshape(O, r, I, r).permute(2, 0, 1, 3)                  # [I, O, r, r]
        prod = (Wb.reshape(I, O, r, r, 1) * B.reshape(1, O, 1, r, r)).sum(3)  # W_io @ B_o: [I, O, r, r]
        return (prod + B).permute(1, 2, 0, 3).reshape(*W.shape)

    def forward(self, x, *args, **kwargs):
        active = self._adapters_to_run(self.miss_block)
        if not active:
            return self.base_layer(x, *args, **kwargs)
        if self.miss_fn == "bat":
            W = self.base_layer.weight
            for adapter in active:
                W = W + self._bat_delta(adapter, W)
            return F.linear(x, W, self.base_layer.bias)
        result = self.base_layer(x, *args, **kwargs)
        for adapter in active:
            r = self.miss_r[adapter]
            xd = self.miss_dropout[adapter](x)
            pad = (-self.in_features) % r
            if pad:  # zero columns on the right up to a multiple of r
                xd = xd @ Tensor(np.eye(self.in_features, self.in_features + pad, dtype=np.float32))
            slices = xd.reshape(*xd.shape[:-1], -1, r).sum(-2)         # [.., in/r, r] -> [.., r]
            result = result + slices @ self._block(adapter)              # [.., r] @ [r, out]
        return result

    def _merged_weight(self, adapter, W, sign=1):
        if self.miss_fn == "bat":
            if sign > 0:
                return W + self._bat_delta(adapter, Tensor(W)).data
            B = self.miss_block[adapter].data
            O, r = B.shape[0], B.shape[1]
            Wb = W.reshape(O, r, -1, r).transpose(2, 0, 1, 3)           # [I, O, r, r]
            Wb = (Wb - B) @ np.linalg.inv(np.eye(r, dtype=np.float32) + B)
            return Wb.transpose(1, 2, 0, 3).reshape(W.shape)
        with no_grad():
            Bt = self._block(adapter).data.T                            # [out, r]
        r, out = W.copy(), self.in_features
        n = out // Bt.shape[1] * Bt.shape[1]
        r[:, :n] = (W[:, :n].reshape(W.shape[0], -1, Bt.shape[1]) + sign * Bt[:, None, :]).reshape(W.shape[0], n)
        r[:, n:] += sign * Bt[:, : out - n]
        return r

    def merge(self, safe_merge=False, adapter_names=None):
        self._merge_adapters(self._merged_weight, adapter_names, safe_merge, self.miss_block)

    def unmerge(self):
        self._unmerge_adapters(lambda a, W: self._merged_weight(a, W, sign=-1))


class MissLinear(MissLayer):
    """MiSS around nn.Linear."""
