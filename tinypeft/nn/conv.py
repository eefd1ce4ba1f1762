"""Conv1d, Conv2d and Conv3d: torch.nn's convolution layers (weight [out, in/groups, *kernel], bias [out], torch's init)."""

from .. import functional as F
from . import init
from .module import Module, Parameter


class _ConvNd(Module):
    _n = None  # spatial dims
    _conv = None  # staticmethod(F.conv1d / conv2d / conv3d)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", dtype=None):
        super().__init__()
        n = self._n
        if padding_mode != "zeros":
            raise NotImplementedError(f"Conv{n}d: padding_mode={padding_mode!r} is not implemented; "
                                      "only 'zeros' (torch's default) is.")
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv{n}d: in_channels ({in_channels}) and out_channels ({out_channels}) must both "
                             f"be divisible by groups ({groups}).")
        tup = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v,) * n  # noqa: E731
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.dilation = tup(kernel_size), tup(stride), tup(dilation)
        self.padding = padding if isinstance(padding, str) else tup(padding)
        self.groups, self.padding_mode = groups, padding_mode
        self.weight = Parameter(init.empty(out_channels, in_channels // groups, *self.kernel_size, dtype=dtype))
        if bias:
            self.bias = Parameter(init.empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        # torch's default, as for Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in/groups * prod(kernel)
        init.torch_default_(self.weight, self.bias)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self._n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._n:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")

    def _conv_forward(self, input, weight, bias):
        """This layer's convolution with another weight and bias (torch's name): adapters convolve their deltas
        with the base layer's stride, padding, dilation and groups through it."""
        return self._conv(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, input):
        # [B, C_in, *S] -> [B, C_out, *S']
        return self._conv_forward(input, self.weight, self.bias)


class Conv1d(_ConvNd):
    _n, _conv = 1, staticmethod(F.conv1d)


class Conv2d(_ConvNd):
    _n, _conv = 2, staticmethod(F.conv2d)


class Conv3d(_ConvNd):
    _n, _conv = 3, staticmethod(F.conv3d)
