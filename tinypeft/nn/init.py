"""torch.nn.init's initialisers, and init_empty_weights() for building a model without storage.

Every initialiser fills a tensor in place, outside autograd, from tinypeft's one generator, so
`tinypeft.manual_seed(s)` makes a model's initial weights reproducible. Values are drawn in float64 on the
CPU and cast, so a seed gives the same weights in every dtype and on every device.

Building a model only to count or wrap its parameters, or to fill them from a checkpoint, must not
allocate them: under `init_empty_weights()` (accelerate's name) `empty()` hands out a placeholder that
knows its shape and dtype and nothing else, and the initialisers skip it, as torch's do on the meta device.
"""
import contextlib
import functools
import math
import threading

import numpy as np

from .. import backend
from ..creation import generator
from ..tensor import Tensor, get_default_dtype

_state = threading.local()


class Unallocated:
    """Stands in for the array of a parameter made under init_empty_weights(): a shape and a dtype only."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype):
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return math.prod(self.shape)

    def astype(self, dtype, copy=True):
        return Unallocated(self.shape, dtype)

    def error(self):
        return RuntimeError(
            f"This parameter (shape {self.shape}, {self.dtype}) was created under init_empty_weights() and has "
            "no storage yet: load a checkpoint into it (load_state_dict) or allocate it with module.to_empty()."
        )

    def __array__(self, *args, **kwargs):
        raise self.error()

    def __getitem__(self, index):
        raise self.error()

    def __setitem__(self, index, value):
        raise self.error()

    def __repr__(self):
        return f"Unallocated(shape={self.shape}, dtype={self.dtype})"


def is_unallocated(t):
    return isinstance(Tensor.data.__get__(t), Unallocated)


@contextlib.contextmanager
def init_empty_weights():
    """Within this block, modules get placeholder parameters: shape and dtype, no memory, no random draws."""
    prev = getattr(_state, "empty", False)
    _state.empty = True
    try:
        yield
    finally:
        _state.empty = prev


def empty(*size, dtype=None):
    """An uninitialised tensor for a parameter (a placeholder under init_empty_weights())."""
    shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)
    dtype = np.dtype(get_default_dtype() if dtype is None else dtype)
    if getattr(_state, "empty", False):
        return Tensor._wrap(Unallocated(shape, dtype))
    return Tensor._wrap(backend.default_xp().empty(shape, dtype=dtype))


# -- filling in place ----------------------------------------------------------------------------------------
def _skips_placeholders(init_fn):
    """A placeholder is returned untouched, before any values are drawn (they could be gigabytes)."""

    @functools.wraps(init_fn)
    def wrapper(tensor, *args, **kwargs):
        return tensor if is_unallocated(tensor) else init_fn(tensor, *args, **kwargs)

    return wrapper


def _fill(tensor, values):
    """Write float64 CPU `values` into tensor's array, cast to its dtype, on its device."""
    data = tensor.data
    if not isinstance(data, np.ndarray):
        values = backend.to_device(values, "cuda")
    data[...] = values
    return tensor


@_skips_placeholders
def uniform_(tensor, a=0.0, b=1.0):
    return _fill(tensor, generator().uniform(a, b, size=tensor.shape))


@_skips_placeholders
def normal_(tensor, mean=0.0, std=1.0):
    return _fill(tensor, generator().normal(mean, std, size=tensor.shape))


@_skips_placeholders
def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """N(mean, std) cut to [a, b] (absolute bounds, as torch), by redrawing what falls outside."""
    values = generator().normal(mean, std, size=tensor.shape)
    bad = (values < a) | (values > b)
    while bad.any():
        values[bad] = generator().normal(mean, std, size=int(bad.sum()))
        bad = (values < a) | (values > b)
    return _fill(tensor, values)


@_skips_placeholders
def constant_(tensor, val):
    return _fill(tensor, np.full(tensor.shape, val, dtype=np.float64))


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def calculate_gain(nonlinearity, param=None):
    """The std multiplier that keeps activations' variance steady through `nonlinearity` (torch's table)."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor):
    """For a weight [out, in, *kernel]: fan_in = in * kernel, fan_out = out * kernel."""
    if tensor.ndim < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """U(-bound, bound) with bound = gain * sqrt(3 / fan): a uniform of variance gain^2 / fan (He et al., 2015).

    nn.Linear passes a=sqrt(5): gain^2 = 2 / (1 + 5) = 1/3, so bound = 1 / sqrt(fan_in)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)
    return normal_(tensor, 0.0, std)


def xavier_uniform_(tensor, gain=1.0):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def torch_default_(weight, bias=None):
    """torch's default init of Linear and Conv layers (their reset_parameters): weight and bias both
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the weight written as kaiming_uniform_ with a=sqrt(5)."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = _calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        uniform_(bias, -bound, bound)
