"""The ops: each file holds Function subclasses (forward + hand-derived backward) and torch-named wrappers.

Importing this package registers every op in autograd.REGISTRY and binds Tensor's operators and methods.
"""
from collections import namedtuple

from . import arithmetic, reduce, shape  # noqa: F401  (registration by import)
from . import elementwise  # noqa: F401
from . import attention, dropout, linear, lora, loss, normalization, softmax  # noqa: F401
from . import conv  # noqa: F401

_MaxResult = namedtuple("max", ["values", "indices"])


def _max(x, dim=None, keepdim=False):
    """torch semantics: x.max() is a scalar; x.max(dim) is (values, indices)."""
    if dim is None:
        return reduce.amax(x)
    from ..tensor import Tensor

    indices = Tensor._wrap(x.data.argmax(axis=dim))
    if keepdim:
        indices = Tensor._wrap(x.xp.expand_dims(indices.data, dim))
    return _MaxResult(reduce.amax(x, dim, keepdim), indices)


def _no_grad_method(name):
    """Comparisons and argmax: plain array results with no gradient."""

    def method(self, *args, **kwargs):
        from ..tensor import Tensor, as_array

        args = [as_array(a, like=self) if isinstance(a, (Tensor, int, float)) else a for a in args]
        return Tensor._wrap(getattr(self.data, name)(*args, **kwargs))

    return method


def bind_tensor_methods(Tensor):
    A, R, S, E = arithmetic, reduce, shape, elementwise
    Tensor.__add__ = lambda a, b: A.add(a, b)
    Tensor.__radd__ = lambda a, b: A.add(b, a)
    Tensor.__sub__ = lambda a, b: A.sub(a, b)
    Tensor.__rsub__ = lambda a, b: A.sub(b, a)
    Tensor.__mul__ = lambda a, b: A.mul(a, b)
    Tensor.__rmul__ = lambda a, b: A.mul(b, a)
    Tensor.__truediv__ = lambda a, b: A.div(a, b)
    Tensor.__rtruediv__ = lambda a, b: A.div(b, a)
    Tensor.__neg__ = lambda a: A.neg(a)
    Tensor.__pow__ = lambda a, b: A.pow(a, b)
    Tensor.__rpow__ = lambda a, b: A.pow(b, a)
    Tensor.__matmul__ = lambda a, b: A.matmul(a, b)
    Tensor.__rmatmul__ = lambda a, b: A.matmul(b, a)
    Tensor.__getitem__ = S.getitem
    for name in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__", "argmax", "argmin", "all", "any"):
        setattr(Tensor, name, _no_grad_method(name))
    Tensor.__hash__ = object.__hash__  # __eq__ is elementwise, as in torch; tensors stay usable as keys
    Tensor.__invert__ = lambda a: Tensor._wrap(~a.data)
    Tensor.__and__ = lambda a, b: Tensor._wrap(a.data & S._raw(b))
    Tensor.__or__ = lambda a, b: Tensor._wrap(a.data | S._raw(b))

    Tensor.add, Tensor.sub, Tensor.mul, Tensor.div = A.add, A.sub, A.mul, A.div
    Tensor.neg, Tensor.pow, Tensor.matmul = A.neg, A.pow, A.matmul
    Tensor.sum, Tensor.mean, Tensor.amax, Tensor.max = R.sum, R.mean, R.amax, _max
    Tensor.reshape, Tensor.view, Tensor.permute, Tensor.transpose = S.reshape, S.reshape, S.permute, S.transpose
    Tensor.unsqueeze, Tensor.squeeze, Tensor.flatten, Tensor.expand = S.unsqueeze, S.squeeze, S.flatten, S.expand
    Tensor.gather, Tensor.split, Tensor.masked_fill = S.gather, S.split, S.masked_fill
    Tensor.T = property(lambda x: S.permute(x, tuple(reversed(range(x.ndim)))))
    Tensor.mT = property(lambda x: S.transpose(x, -2, -1))
    E.bind_tensor_methods(Tensor)
    Tensor.softmax = lambda x, dim, dtype=None: softmax.softmax(x, dim, dtype)
    Tensor.log_softmax = lambda x, dim, dtype=None: softmax.log_softmax(x, dim, dtype)
