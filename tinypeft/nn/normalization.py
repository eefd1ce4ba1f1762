"""LayerNorm and RMSNorm: normalise over the trailing normalized_shape dims, then scale (and shift)."""
import numbers

from .. import functional as F
from . import init
from .module import Module, Parameter


def _as_shape(normalized_shape):
    if isinstance(normalized_shape, numbers.Integral):
        return (int(normalized_shape),)
    return tuple(normalized_shape)


def _setup(module, normalized_shape, eps, elementwise_affine, dtype, bias=None):
    """What both norms keep: normalized_shape, eps, and a weight (and, unless bias is None, a bias) of that
    shape; a parameter that is switched off is registered as None, as torch does."""
    module.normalized_shape = _as_shape(normalized_shape)
    module.eps = eps
    module.elementwise_affine = elementwise_affine
    wanted = {"weight": elementwise_affine} if bias is None else {"weight": elementwise_affine,
                                                                  "bias": elementwise_affine and bias}
    for name, on in wanted.items():
        if on:
            setattr(module, name, Parameter(init.empty(module.normalized_shape, dtype=dtype)))
        else:
            module.register_parameter(name, None)


class LayerNorm(Module):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, dtype=None):
        super().__init__()
        _setup(self, normalized_shape, eps, elementwise_affine, dtype, bias=bias)
        self.reset_parameters()

    def reset_parameters(self):
        # start as the identity map on the normalised values
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
            f"bias={self.bias is not None}"
        )


class RMSNorm(Module):
    """eps=None means the machine epsilon of the input's dtype (torch's default)."""

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, dtype=None):
        super().__init__()
        _setup(self, normalized_shape, eps, elementwise_affine, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, input):
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
