"""Linear: y = x W^T + b with W stored [out_features, in_features], torch's layout (and its init)."""

from .. import functional as F
from . import init
from .module import Module, Parameter


class Identity(Module):
    """Returns its input: a placeholder where an architecture has an optional layer."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(init.empty(out_features, in_features, dtype=dtype))  # [out, in]
        if bias:
            self.bias = Parameter(init.empty(out_features, dtype=dtype))  # [out]
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.torch_default_(self.weight, self.bias)  # both U(-1/sqrt(in), 1/sqrt(in))

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)  # [..., in] -> [..., out]

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
