"""Tensor: an ndarray (NumPy or CuPy) plus what autograd needs: requires_grad, .grad and the op that made it.

Methods mirror torch.Tensor's names and signatures (`sum(dim, keepdim)`, `transpose(d0, d1)`, `view`,
`masked_fill`, ...). The maths lives in tinypeft/ops; this file only wires operators and methods to it.
"""
import numpy as np

from . import backend
from .autograd import backward as _backward
from .autograd import is_grad_enabled

_default_dtype = np.float32


def set_default_dtype(dtype):
    """dtype for tensors made from Python numbers and lists (float32 unless changed)."""
    global _default_dtype
    _default_dtype = np.dtype(dtype).type


def get_default_dtype():
    return _default_dtype


def as_array(x, like=None, dtype=None):
    """The raw array behind x. Python numbers take the dtype of `like` (so float32 * 2.0 stays float32)."""
    if isinstance(x, Tensor):
        return x.data
    xp = like.xp if like is not None else backend.default_xp()
    if dtype is None and isinstance(x, (int, float)) and not isinstance(x, bool):
        dtype = like.dtype if like is not None and like.dtype.kind == "f" else _default_dtype
    return xp.asarray(x, dtype=dtype)


class Tensor:
    __slots__ = ("data", "requires_grad", "grad", "_ctx", "_retains_grad", "_released", "__weakref__")
    __array_priority__ = 1000  # so ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data, requires_grad=False, dtype=None):
        xp = backend.default_xp()
        if isinstance(data, Tensor):
            data = data.data
        if dtype is None and not hasattr(data, "dtype"):
            arr = xp.asarray(data)
            if arr.dtype.kind == "f":
                arr = arr.astype(_default_dtype)
        else:
            arr = xp.asarray(data, dtype=dtype)
        if requires_grad and arr.dtype.kind != "f":
            raise RuntimeError(f"Only floating-point tensors can require gradients; got dtype {arr.dtype}.")
        self.data = arr
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._ctx = None
        self._retains_grad = False
        self._released = False

    @classmethod
    def _wrap(cls, array, requires_grad=False):
        t = cls.__new__(cls)
        t.data = array
        t.requires_grad = requires_grad
        t.grad = None
        t._ctx = None
        t._retains_grad = False
        t._released = False
        return t

    # -- facts ---------------------------------------------------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def xp(self):
        return backend.xp_of(self.data)

    @property
    def device(self):
        return "cpu" if isinstance(self.data, np.ndarray) else "cuda"

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    def size(self, dim=None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def dim(self):
        return self.data.ndim

    def numel(self):
        return int(self.data.size)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        grad = f", grad_fn={self._ctx!r}" if self._ctx is not None else (", requires_grad=True" if self.requires_grad else "")
        return f"tensor({self.data!r}{grad})"

    # -- autograd ------------------------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=False):
        _backward(self, gradient, retain_graph)

    def detach(self):
        return Tensor._wrap(self.data, requires_grad=False)

    def requires_grad_(self, requires_grad=True):
        if requires_grad and self.dtype.kind != "f":
            raise RuntimeError(f"Only floating-point tensors can require gradients; got dtype {self.dtype}.")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self):
        self._retains_grad = True

    def numpy(self):
        if self.requires_grad and is_grad_enabled():
            raise RuntimeError("Can't call numpy() on a Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return backend.to_device(self.data, "cpu")

    def __array__(self, dtype=None, copy=None):
        """np.asarray(tensor) works, as with torch (a copy from the GPU when needed)."""
        a = backend.to_device(self.data, "cpu")
        return a if dtype is None else a.astype(dtype)

    def item(self):
        return self.data.item()

    def tolist(self):
        return backend.to_device(self.data, "cpu").tolist()

    # -- dtype and device: both differentiable, as in torch ---------------------------------------------
    def to(self, dtype_or_device):
        if isinstance(dtype_or_device, str) and (dtype_or_device == "cpu" or dtype_or_device.startswith("cuda")):
            return ops.shape.to_device(self, dtype_or_device)
        return ops.shape.cast(self, dtype_or_device)

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def long(self):
        return Tensor._wrap(self.data.astype(np.int64))

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def clone(self):
        return ops.shape.cast(self, self.dtype, copy=True)

    def contiguous(self):
        return self

    # -- in-place, outside autograd (initialisers, optimisers) ------------------------------------------
    def _check_inplace(self):
        if self.requires_grad and self.is_leaf and is_grad_enabled():
            raise RuntimeError(
                "a leaf Variable that requires grad is being used in an in-place operation; wrap it in "
                "`with tinypeft.no_grad():`."
            )

    def copy_(self, other):
        self._check_inplace()
        self.data[...] = as_array(other, like=self)
        return self

    def zero_(self):
        self._check_inplace()
        self.data[...] = 0
        return self

    def fill_(self, value):
        self._check_inplace()
        self.data[...] = value
        return self

    def __setitem__(self, index, value):
        self._check_inplace()
        self.data[index] = as_array(value, like=self)


from . import ops  # noqa: E402  (ops import Tensor lazily; this binds the methods below)

ops.bind_tensor_methods(Tensor)
