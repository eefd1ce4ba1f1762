"""Making tensors: torch's factory functions, and the one random generator that manual_seed() resets."""
import numpy as np

from . import backend
from .tensor import Tensor, get_default_dtype

# A fixed starting seed, as torch has: a plain script (no manual_seed) gives the same numbers every run.
DEFAULT_SEED = 0
_rng = np.random.default_rng(DEFAULT_SEED)
_seed = DEFAULT_SEED


def initial_seed():
    """The seed the generator started from (torch.initial_seed's name)."""
    return _seed


def manual_seed(seed):
    """Reseed tinypeft's generator (initialisers, dropout, sampling) for reproducible runs."""
    global _rng, _seed
    _rng = np.random.default_rng(seed)
    _seed = seed
    return _rng


def generator():
    return _rng


def _shape(size):
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)


def _dtype(dtype):
    return np.dtype(get_default_dtype() if dtype is None else dtype)


def _make(array, requires_grad):
    return Tensor(backend.to_device(array, backend.get_device()), requires_grad=requires_grad)


def tensor(data, dtype=None, requires_grad=False):
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def zeros(*size, dtype=None, requires_grad=False):
    return Tensor(backend.default_xp().zeros(_shape(size), dtype=_dtype(dtype)), requires_grad=requires_grad)


def ones(*size, dtype=None, requires_grad=False):
    return Tensor(backend.default_xp().ones(_shape(size), dtype=_dtype(dtype)), requires_grad=requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False):
    return Tensor(backend.default_xp().full(tuple(size), fill_value, dtype=_dtype(dtype)), requires_grad=requires_grad)


def empty(*size, dtype=None, requires_grad=False):
    return Tensor(backend.default_xp().empty(_shape(size), dtype=_dtype(dtype)), requires_grad=requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    return Tensor(t.xp.zeros(t.shape, dtype=dtype or t.dtype), requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return Tensor(t.xp.ones(t.shape, dtype=dtype or t.dtype), requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None):
    if end is None:
        start, end = 0, start
    return Tensor(backend.default_xp().arange(start, end, step, dtype=dtype))


def randn(*size, dtype=None, requires_grad=False):
    return _make(_rng.standard_normal(_shape(size)).astype(_dtype(dtype)), requires_grad)


def rand(*size, dtype=None, requires_grad=False):
    return _make(_rng.random(_shape(size)).astype(_dtype(dtype)), requires_grad)


def randint(low, high, size, dtype=np.int64):
    return _make(_rng.integers(low, high, size=tuple(size)).astype(dtype), False)
