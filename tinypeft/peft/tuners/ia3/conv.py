"""(IA)^3 around nn.Conv1d / 2d / 3d, as PEFT builds it: one vector over the channels, stored [1, C, 1, ...].

    not feed-forward:  y = conv(x, W) * l      l over the output channels (axis 1 of y)
    feed-forward:      y = conv(x * l, W)      l over the input channels (axis 1 of x)

The gradients come from mul and conv (proven ops). Merging scales the kernel: per output channel (its rows,
and the bias), or per input channel, which for a grouped conv means each group's slice [out/g, in/g, ..]
takes that group's part of l.
"""
import numpy as np

from .... import backend, nn
from ....creation import generator
from .layer import IA3Layer


class _ConvNd(IA3Layer):
    def __init__(self, base_layer, is_feedforward=False):
        nn.Module.__init__(self)
        self._init_tuner(base_layer)
        self.ia3_l = nn.ParameterDict({})
        self.is_feedforward = is_feedforward
        self.fan_in_fan_out = False
        self.in_features, self.out_features = base_layer.in_channels, base_layer.out_channels

    def update_layer(self, adapter_name, init_ia3_weights=True):
        n = self.in_features if self.is_feedforward else self.out_features
        shape = (1, n) + (1,) * (self.base_layer.weight.ndim - 2)  # [1, C, 1(, 1)]
        value = np.ones(shape, np.float32) if init_ia3_weights else generator().standard_normal(shape).astype(np.float32)
        self.ia3_l[adapter_name] = nn.Parameter(backend.to_device(value, self.base_layer.weight.device))
        self.set_adapter(self.active_adapters)

    def _scale_for_weight(self, adapter):
        """l shaped to broadcast against the kernel [out, in/groups, *k]."""
        l = self.ia3_l[adapter].data
        if not self.is_feedforward:
            return l.swapaxes(0, 1)                                   # [out, 1, 1(, 1)]
        g = self.base_layer.groups
        if g == 1:
            return l                                                  # [1, in, 1(, 1)]
        out_g, in_g = self.out_features // g, self.in_features // g
        per_group = l.reshape(g, 1, in_g, *l.shape[2:])               # group i's input channels
        return np.broadcast_to(per_group, (g, out_g, in_g, *l.shape[2:])).reshape(self.out_features, in_g, *l.shape[2:])

    def forward(self, x, *args, **kwargs):
        active = [a for a in self.active_adapters if a in self.ia3_l]
        if self.disable_adapters and self.merged:
            self.unmerge()
        if self.disable_adapters or self.merged or not active:
            return self.base_layer(x, *args, **kwargs)
        scale = None
        for adapter in active:
            l = self.ia3_l[adapter]
            scale = l if scale is None else scale * l
        if self.is_feedforward:
            return self.base_layer(x * scale, *args, **kwargs)      # [B, C_in, *S] * [1, C_in, 1..]
        return self.base_layer(x, *args, **kwargs) * scale          # [B, C_out, *S'] * [1, C_out, 1..]


class Conv1d(_ConvNd):
    """(IA)^3 around nn.Conv1d: ia3_l [1, C, 1]."""


class Conv2d(_ConvNd):
    """(IA)^3 around nn.Conv2d: ia3_l [1, C, 1, 1]."""


class Conv3d(_ConvNd):
    """(IA)^3 around nn.Conv3d: ia3_l [1, C, 1, 1, 1]."""
