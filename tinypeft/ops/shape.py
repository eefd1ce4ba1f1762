"""Shape ops: reshape, permute, indexing, gather, embedding, cat, stack, where, masked_fill, cast.

These move numbers without changing them, so each backward routes the gradient back to where the
number came from: the inverse permutation, a scatter-add for indexing, a slice for concatenation.
"""
from .. import backend
from ..autograd import Function
from ..tensor import Tensor, as_array


class Reshape(Function):
    name = "reshape"

    @staticmethod
    def forward(ctx, x, *, shape):
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


class Permute(Function):
    name = "permute"

    @staticmethod
    def forward(ctx, x, *, dims):
        ctx.dims = tuple(d % x.ndim for d in dims)
        return x.transpose(ctx.dims)

    @staticmethod
    def backward(ctx, g):
        # the inverse permutation puts every axis back
        inverse = [0] * len(ctx.dims)
        for i, d in enumerate(ctx.dims):
            inverse[d] = i
        return g.transpose(inverse)


class Expand(Function):
    name = "expand"

    @staticmethod
    def forward(ctx, x, *, shape):
        shape = tuple(x.shape[i - (len(shape) - x.ndim)] if s == -1 else s for i, s in enumerate(shape))
        return backend.xp_of(x).broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, g):
        return g  # the engine sums the broadcast axes back


class GetItem(Function):
    """x[index] for ints, slices, None, Ellipsis, integer/boolean arrays."""

    name = "getitem"

    @staticmethod
    def forward(ctx, x, *, index):
        ctx.shape, ctx.dtype, ctx.index = x.shape, x.dtype, index
        return x[index]

    @staticmethod
    def backward(ctx, g):
        # scatter-add: an element picked twice by a fancy index gets both gradients
        xp = backend.xp_of(g)
        out = xp.zeros(ctx.shape, dtype=ctx.dtype)
        xp.add.at(out, ctx.index, g) if _is_fancy(ctx.index) else out.__setitem__(ctx.index, g)
        return out


def _is_fancy(index):
    items = index if isinstance(index, tuple) else (index,)
    return any(hasattr(i, "shape") or isinstance(i, list) for i in items)


class Gather(Function):
    """torch.gather(x, dim, index): out[i][j] = x[i][index[i][j]] for dim=1; index may be smaller than x."""

    name = "gather"

    @staticmethod
    def forward(ctx, x, *, dim, index):
        xp = backend.xp_of(x)
        where = backend.open_grid(index.shape, xp)
        where[dim % x.ndim] = index
        ctx.shape, ctx.where = x.shape, tuple(where)
        return x[ctx.where]

    @staticmethod
    def backward(ctx, g):
        # scatter-add into the picked positions (an index repeated along dim adds up)
        xp = backend.xp_of(g)
        out = xp.zeros(ctx.shape, dtype=g.dtype)
        xp.add.at(out, ctx.where, g)
        return out


class Embedding(Function):
    """weight[input]: a row lookup. The gradient of row v is the sum over positions holding token v."""

    name = "embedding"

    @staticmethod
    def forward(ctx, weight, *, input, padding_idx=None):
        ctx.num, ctx.input, ctx.padding_idx = weight.shape[0], input, padding_idx
        return weight[input]

    @staticmethod
    def backward(ctx, g):
        xp = backend.xp_of(g)
        dim = g.shape[-1]
        grad = xp.zeros((ctx.num, dim), dtype=g.dtype)
        xp.add.at(grad, ctx.input.reshape(-1), g.reshape(-1, dim))
        if ctx.padding_idx is not None:
            grad[ctx.padding_idx] = 0  # torch: the padding row never learns
        return grad


class Cat(Function):
    name = "cat"

    @staticmethod
    def forward(ctx, *xs, dim=0):
        ctx.dim = dim % xs[0].ndim
        ctx.sizes = [x.shape[ctx.dim] for x in xs]
        return backend.xp_of(xs[0]).concatenate(xs, axis=ctx.dim)

    @staticmethod
    def backward(ctx, g):
        # each input gets back its own slice of the gradient
        out, start = [], 0
        for n, need in zip(ctx.sizes, ctx.needs_input_grad):
            sl = [slice(None)] * g.ndim
            sl[ctx.dim] = slice(start, start + n)
            out.append(g[tuple(sl)] if need else None)
            start += n
        return tuple(out)


class Stack(Function):
    name = "stack"

    @staticmethod
    def forward(ctx, *xs, dim=0):
        ctx.dim = dim % (xs[0].ndim + 1)
        return backend.xp_of(xs[0]).stack(xs, axis=ctx.dim)

    @staticmethod
    def backward(ctx, g):
        xp = backend.xp_of(g)
        return tuple(xp.take(g, i, axis=ctx.dim) for i in range(g.shape[ctx.dim]))


class Where(Function):
    """where(condition, a, b): a where condition holds, else b."""

    name = "where"

    @staticmethod
    def forward(ctx, a, b, *, condition):
        ctx.condition = condition
        return backend.xp_of(a).where(condition, a, b)

    @staticmethod
    def backward(ctx, g):
        # d/da = [condition], d/db = [not condition]
        xp = backend.xp_of(g)
        zero = xp.zeros((), dtype=g.dtype)
        ga = xp.where(ctx.condition, g, zero) if ctx.needs_input_grad[0] else None
        gb = xp.where(ctx.condition, zero, g) if ctx.needs_input_grad[1] else None
        return ga, gb


class MaskedFill(Function):
    name = "masked_fill"

    @staticmethod
    def forward(ctx, x, *, mask, value):
        ctx.mask = mask
        xp = backend.xp_of(x)
        return xp.where(mask, xp.asarray(value, dtype=x.dtype), x)

    @staticmethod
    def backward(ctx, g):
        # filled positions are constants: no gradient flows through them
        xp = backend.xp_of(g)
        return xp.where(ctx.mask, xp.zeros((), dtype=g.dtype), g)


class Cast(Function):
    name = "cast"

    @staticmethod
    def forward(ctx, x, *, dtype, copy=False):
        ctx.dtype = x.dtype
        return x.astype(dtype, copy=copy)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.dtype)


class ToDevice(Function):
    """x on "cpu" or "cuda": a copy of the same values, so the gradient is g moved back to x's device."""

    name = "to_device"

    @staticmethod
    def forward(ctx, x, device):
        ctx.device = "cpu" if backend.xp_of(x).__name__ == "numpy" else "cuda"
        return backend.to_device(x, device)

    @staticmethod
    def backward(ctx, g):
        return backend.to_device(g, ctx.device)


def to_device(x, device):
    return ToDevice.apply(x, device=device)


# -- torch-named functions ---------------------------------------------------------------------------------
def reshape(x, *shape):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Reshape.apply(x, shape=tuple(shape))


def permute(x, *dims):
    dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    return Permute.apply(x, dims=tuple(dims))


def transpose(x, dim0, dim1):
    dims = list(range(x.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return Permute.apply(x, dims=tuple(dims))


def expand(x, *shape):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Expand.apply(x, shape=tuple(shape))


def unsqueeze(x, dim):
    dim = dim % (x.ndim + 1)
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


def squeeze(x, dim=None):
    if dim is None:
        return reshape(x, tuple(n for n in x.shape if n != 1))
    dim = dim % x.ndim
    return x if x.shape[dim] != 1 else reshape(x, x.shape[:dim] + x.shape[dim + 1 :])


def flatten(x, start_dim=0, end_dim=-1):
    end = end_dim % x.ndim
    n = 1
    for s in x.shape[start_dim : end + 1]:
        n *= s
    return reshape(x, x.shape[:start_dim] + (n,) + x.shape[end + 1 :])


def getitem(x, index):
    # a Tensor inside the index becomes its array; slices, ints, None and Ellipsis stay as they are
    unwrap = lambda i: as_array(i) if isinstance(i, Tensor) else i  # noqa: E731
    index = tuple(unwrap(i) for i in index) if isinstance(index, tuple) else unwrap(index)
    return GetItem.apply(x, index=index)


def gather(x, dim, index):
    index = as_array(index)
    n = x.shape[dim]
    if index.size and (index.min() < 0 or index.max() >= n):  # as torch: no wrapping of negative indices
        bad = index.min() if index.min() < 0 else index.max()
        raise IndexError(f"gather: index {int(bad)} is out of bounds for dimension {dim} with size {n}.")
    return Gather.apply(x, dim=dim, index=index)


def embedding(input, weight, padding_idx=None):
    ids = as_array(input)
    if ids.size and (ids.min() < 0 or ids.max() >= weight.shape[0]):  # NumPy would wrap -1 to the last row
        bad = ids.min() if ids.min() < 0 else ids.max()
        raise IndexError(f"embedding: index {int(bad)} is out of range for {weight.shape[0]} rows.")
    return Embedding.apply(weight, input=ids, padding_idx=padding_idx)


def cat(tensors, dim=0):
    return Cat.apply(*tensors, dim=dim)


def stack(tensors, dim=0):
    return Stack.apply(*tensors, dim=dim)


def split(x, split_size_or_sections, dim=0):
    """torch.split: chunks of a given size, or the given list of sizes; each chunk is a slice."""
    n = x.shape[dim]
    if isinstance(split_size_or_sections, int):
        sizes = [min(split_size_or_sections, n - i) for i in range(0, n, split_size_or_sections)]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} do not add up to dimension {dim} of size {n}.")
    out, start = [], 0
    for s in sizes:
        index = [slice(None)] * x.ndim
        index[dim] = slice(start, start + s)
        out.append(getitem(x, tuple(index)))
        start += s
    return tuple(out)


def where(condition, input, other):
    return Where.apply(input, other, condition=as_array(condition))


def masked_fill(x, mask, value):
    return MaskedFill.apply(x, mask=as_array(mask), value=value)


def cast(x, dtype, copy=False):
    return Cast.apply(x, dtype=dtype, copy=copy)
