"""LoRA around nn.Conv1d / nn.Conv2d / nn.Conv3d, as PEFT builds it.

Per adapter, lora_A is a conv of the same type with the base layer's kernel, stride and padding
(in_channels -> r, no bias) and lora_B a 1x1 conv (r -> out_channels, the base layer's groups):

    y = conv(x, W) + s * conv_1x1(conv(dropout(x), A), B)          A [r, in, *k], B [out, r/groups, 1..]

With groups = 1 the two convs compose into one of the base layer's shape, which is what merge adds:

    delta[o, c, *k] = s * sum_j B[o, j] A[j, c, *k]                  (an einsum over the rank)

As in PEFT, lora_A gets neither the base layer's dilation nor its groups, and merging a grouped conv is refused.
No new op is needed: the forward is two calls of the conv op, whose backward is proven in ops/conv.py.

DoRA (use_dora): with n = ||W + s L|| over all axes but the output channel (a constant, no gradient, as in
PEFT), L = B.view(-1, r) @ A.view(r, -1) reshaped like W, and a trained magnitude m [1, out, 1..]:

    y = (m / n) * (conv(x, W) + s B(A(x))) + bias       merge: W' = (m / n) (W + delta), undone exactly
"""
import math
import warnings

import numpy as np

from .... import nn
from ....tensor import Tensor
from .layer import LoraLayer


class _ConvNd(LoraLayer):
    def __init__(self, base_layer):
        super().__init__(base_layer)
        self.fan_in_fan_out = False
        self.in_features, self.out_features = base_layer.in_channels, base_layer.out_channels
        if base_layer.groups > 1:
            warnings.warn("LoRA adapter added to ConvNd layer with groups > 1. Merging is not supported.")

    def update_layer(self, adapter_name, r, lora_alpha, lora_dropout, init_lora_weights, use_rslora,
                     use_dora=False, lora_bias=False):
        base = self.base_layer
        if r % base.groups != 0:
            raise ValueError(
                f"Targeting a {type(base).__name__} with groups={base.groups} and rank {r}. Currently, support is "
                "limited to conv layers where the rank is divisible by groups. Either choose a different rank or do "
                "not target this specific layer."
            )
        if lora_bias and base.bias is None:
            warnings.warn(f"`lora_bias=True` was passed but the targeted layer of type {type(base).__name__} has no "
                          "bias. This means that merging LoRA weights won't be possible.")
        super().update_layer(adapter_name, r, lora_alpha, lora_dropout, init_lora_weights, use_rslora,
                             use_dora, lora_bias)

    def _create_adapter(self, adapter_name, r, use_dora, lora_bias):
        base = self.base_layer
        conv_layer, ones = type(base), (1,) * len(base.kernel_size)  # A and B: convs of the base layer's type
        self.lora_A[adapter_name] = conv_layer(self.in_features, r, base.kernel_size, base.stride, base.padding,
                                               bias=False)
        self.lora_B[adapter_name] = conv_layer(r, self.out_features, ones, ones, groups=base.groups, bias=lora_bias)

    def _init_adapter(self, adapter_name, init_lora_weights):
        """A Kaiming-uniform (fan_in = in * prod(kernel)) or N(0, 1/r) for "gaussian"; B = 0: a no-op at start.
        False keeps both convs' own random init, as PEFT does (its test setting)."""
        if init_lora_weights is False:
            return
        if isinstance(init_lora_weights, str) and init_lora_weights != "gaussian":
            raise NotImplementedError(f"init_lora_weights={init_lora_weights!r} on a conv layer is not supported by "
                                      "tinypeft (PiSSA and OLoRA are implemented for Linear layers).")
        A, B = self.lora_A[adapter_name], self.lora_B[adapter_name]
        if init_lora_weights == "gaussian":
            nn.init.normal_(A.weight, std=1 / self.r[adapter_name])
        else:
            nn.init.kaiming_uniform_(A.weight, a=math.sqrt(5))
        nn.init.zeros_(B.weight)
        if B.bias is not None:
            nn.init.zeros_(B.bias)

    def _weight_norm(self, adapter):
        """DoRA's n = ||W + s L|| per output channel, shaped [1, out, 1..] like the magnitude (PEFT's layout)."""
        W, r = self.base_layer.weight.data, self.r[adapter]
        L = self.lora_B[adapter].weight.data.reshape(-1, r) @ self.lora_A[adapter].weight.data.reshape(r, -1)
        n = np.sqrt(((W + L.reshape(W.shape) * self.scaling[adapter]).astype(np.float64) ** 2).sum(
            axis=tuple(range(1, W.ndim))))
        return n.astype(W.dtype).reshape((1, -1) + (1,) * (W.ndim - 2))

    def get_delta_weight(self, adapter):
        """s * B A composed into one kernel [out, in, *k] (groups = 1): delta[o, c, ..] = s sum_j B[o, j] A[j, c, ..]."""
        if self.base_layer.groups > 1:
            raise NotImplementedError("Merging is not supported for _ConvNd layers with groups > 1!")
        A = self.lora_A[adapter].weight.data                         # [r, in, *k]
        B = self.lora_B[adapter].weight.data.reshape(self.out_features, -1)  # [out, r, 1..] -> [out, r]
        return np.tensordot(B, A, axes=(1, 0)) * self.scaling[adapter]  # [out, in, *k]

    def _dora_merge_scale(self, adapter):
        """m / n on each output channel of the kernel: [1, out, 1..] -> [out, 1, 1..] (merge and unmerge are
        LoraLayer's)."""
        return (self.lora_magnitude_vector[adapter].weight.data / self._weight_norm(adapter)).swapaxes(0, 1)

    def forward(self, x, *args, **kwargs):
        adapters = self._adapters_to_run()
        result = self.base_layer(x, *args, **kwargs)
        for adapter in adapters:
            A, B, drop, s = self.lora_A[adapter], self.lora_B[adapter], self.lora_dropout[adapter], self.scaling[adapter]
            xd = drop(x)
            if not self.use_dora[adapter]:  # [B, C_in, *S] -> [B, r, *S'] -> [B, C_out, *S']
                result = result + B(A(xd)) * s
                continue
            factor = self.lora_magnitude_vector[adapter].weight / Tensor(self._weight_norm(adapter))  # [1, out, 1..]
            plain = self.base_layer._conv_forward(xd, self.base_layer.weight, None)
            result = result + (factor - 1) * plain + factor * B(A(xd)) * s
        return result


class Conv1d(_ConvNd):
    """LoRA around nn.Conv1d: lora_A [r, in, k], lora_B [out, r/groups, 1]."""


class Conv2d(_ConvNd):
    """LoRA around nn.Conv2d: lora_A [r, in, kh, kw], lora_B [out, r/groups, 1, 1]."""


class Conv3d(_ConvNd):
    """LoRA around nn.Conv3d: lora_A [r, in, kd, kh, kw], lora_B [out, r/groups, 1, 1, 1]."""
