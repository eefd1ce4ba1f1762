"""Tensor: an ndarray (NumPy or CuPy) plus what autograd needs: requires_grad, .grad and the op that made it.

Methods mirror torch.Tensor's names and signatures (`sum(dim, keepdim)`, `transpose(d0, d1)`, `view`,
`masked_fill`, ...). The maths lives in tinypeft/ops; every method here is one line down to its op there,
so "go to definition" on `x.sum` lands on ops.reduce.sum, and from there on the Sum Function.
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
    """The array behind x: the one way tinypeft unwraps its inputs.

    A Tensor gives its .data; None stays None (an absent optional input); an array keeps its module;
    anything else (lists, Python numbers) goes through xp.asarray. Python numbers take the dtype of
    `like` (so float32 * 2.0 stays float32); with `like`, the result lives on like's device.
    """
    if x is None:
        return None
    if isinstance(x, Tensor):
        return x.data
    if like is not None:
        xp = like.xp
    else:  # an array stays where it is; lists and numbers go to the default device
        xp = backend.xp_of(x) if hasattr(x, "shape") and hasattr(x, "dtype") else backend.default_xp()
    if dtype is None and isinstance(x, (int, float)) and not isinstance(x, bool):
        dtype = like.dtype if like is not None and like.dtype.kind == "f" else _default_dtype
    return xp.asarray(x, dtype=dtype)


def as_numpy(x, dtype=None):
    """The NumPy array behind x (a Tensor, an array on either device, a list): for host-side work on ids and labels."""
    return np.asarray(backend.to_device(as_array(x), "cpu"), dtype=dtype)


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


    # -- ops: one line each, down to the torch-named function in tinypeft/ops ------------------------------
    def __add__(self, other): return ops.arithmetic.add(self, other)
    def __radd__(self, other): return ops.arithmetic.add(other, self)
    def __sub__(self, other): return ops.arithmetic.sub(self, other)
    def __rsub__(self, other): return ops.arithmetic.sub(other, self)
    def __mul__(self, other): return ops.arithmetic.mul(self, other)
    def __rmul__(self, other): return ops.arithmetic.mul(other, self)
    def __truediv__(self, other): return ops.arithmetic.div(self, other)
    def __rtruediv__(self, other): return ops.arithmetic.div(other, self)
    def __pow__(self, other): return ops.arithmetic.pow(self, other)
    def __rpow__(self, other): return ops.arithmetic.pow(other, self)
    def __matmul__(self, other): return ops.arithmetic.matmul(self, other)
    def __rmatmul__(self, other): return ops.arithmetic.matmul(other, self)
    def __neg__(self): return ops.arithmetic.neg(self)
    def __getitem__(self, index): return ops.shape.getitem(self, index)

    def add(self, other): return ops.arithmetic.add(self, other)
    def sub(self, other): return ops.arithmetic.sub(self, other)
    def mul(self, other): return ops.arithmetic.mul(self, other)
    def div(self, other): return ops.arithmetic.div(self, other)
    def neg(self): return ops.arithmetic.neg(self)
    def pow(self, exponent): return ops.arithmetic.pow(self, exponent)
    def matmul(self, other): return ops.arithmetic.matmul(self, other)

    def sum(self, dim=None, keepdim=False): return ops.reduce.sum(self, dim, keepdim)
    def mean(self, dim=None, keepdim=False): return ops.reduce.mean(self, dim, keepdim)
    def amax(self, dim=None, keepdim=False): return ops.reduce.amax(self, dim, keepdim)
    def max(self, dim=None, keepdim=False): return ops.reduce.max(self, dim, keepdim)

    def exp(self): return ops.elementwise.exp(self)
    def log(self): return ops.elementwise.log(self)
    def sqrt(self): return ops.elementwise.sqrt(self)
    def tanh(self): return ops.elementwise.tanh(self)
    def sin(self): return ops.elementwise.sin(self)
    def cos(self): return ops.elementwise.cos(self)
    def sigmoid(self): return ops.elementwise.sigmoid(self)
    def relu(self): return ops.elementwise.relu(self)
    def softmax(self, dim, dtype=None): return ops.softmax.softmax(self, dim, dtype)
    def log_softmax(self, dim, dtype=None): return ops.softmax.log_softmax(self, dim, dtype)

    def reshape(self, *shape): return ops.shape.reshape(self, *shape)
    def view(self, *shape): return ops.shape.reshape(self, *shape)
    def permute(self, *dims): return ops.shape.permute(self, *dims)
    def transpose(self, dim0, dim1): return ops.shape.transpose(self, dim0, dim1)
    def unsqueeze(self, dim): return ops.shape.unsqueeze(self, dim)
    def squeeze(self, dim=None): return ops.shape.squeeze(self, dim)
    def flatten(self, start_dim=0, end_dim=-1): return ops.shape.flatten(self, start_dim, end_dim)
    def expand(self, *shape): return ops.shape.expand(self, *shape)
    def gather(self, dim, index): return ops.shape.gather(self, dim, index)
    def split(self, split_size_or_sections, dim=0): return ops.shape.split(self, split_size_or_sections, dim)
    def masked_fill(self, mask, value): return ops.shape.masked_fill(self, mask, value)

    @property
    def T(self): return ops.shape.permute(self, tuple(reversed(range(self.ndim))))

    @property
    def mT(self): return ops.shape.transpose(self, -2, -1)

    # -- comparisons, logic and argmax: plain arrays with no gradient --------------------------------------
    def __lt__(self, other): return Tensor._wrap(self.data < as_array(other, like=self))
    def __le__(self, other): return Tensor._wrap(self.data <= as_array(other, like=self))
    def __gt__(self, other): return Tensor._wrap(self.data > as_array(other, like=self))
    def __ge__(self, other): return Tensor._wrap(self.data >= as_array(other, like=self))
    def __eq__(self, other): return Tensor._wrap(self.data == as_array(other, like=self))
    def __ne__(self, other): return Tensor._wrap(self.data != as_array(other, like=self))
    __hash__ = object.__hash__  # __eq__ is elementwise, as in torch; tensors stay usable as dict keys
    def __invert__(self): return Tensor._wrap(~self.data)
    def __and__(self, other): return Tensor._wrap(self.data & as_array(other))
    def __or__(self, other): return Tensor._wrap(self.data | as_array(other))
    # index and truth reductions: NumPy's, under torch's argument names (dim, keepdim)
    def argmax(self, dim=None, keepdim=False): return Tensor._wrap(self.data.argmax(axis=dim, keepdims=keepdim))
    def argmin(self, dim=None, keepdim=False): return Tensor._wrap(self.data.argmin(axis=dim, keepdims=keepdim))
    def all(self, dim=None, keepdim=False): return Tensor._wrap(self.data.all(axis=dim, keepdims=keepdim))
    def any(self, dim=None, keepdim=False): return Tensor._wrap(self.data.any(axis=dim, keepdims=keepdim))

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




# Imported last: the ops import Tensor (through creation), so Tensor must exist first.
from . import ops  # noqa: E402
