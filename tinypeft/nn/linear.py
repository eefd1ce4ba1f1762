"""Linear: y = x W^T + b with W stored [out_features, in_features], torch's layout (and its init)."""
import math

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
        # torch's default: U(-1/sqrt(in), 1/sqrt(in)) for both, written as kaiming_uniform with a=sqrt(5)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)  # [..., in] -> [..., out]

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
