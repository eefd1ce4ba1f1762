"""Reverse-mode autograd: the Function base class, the op registry, grad mode, and backward().

Each op is a Function subclass with a `forward(ctx, x, weight, bias=None, *, option=...)` that computes on raw
arrays and a `backward(ctx, grad)` that returns one gradient per positional input (or None where none is
needed). One convention for every op: the positional arguments are the inputs a gradient may flow to, an
absent optional input is None (passed straight through, its needs_input_grad is False), and everything
else (dims, eps, flags, integer indices) is keyword-only.
`Function.apply` wraps the result in a Tensor and, only when some input requires grad, records the ctx
as the node that made it. `backward()` sorts the graph topologically and walks it in reverse.

Why a topological sort? A tensor used by several ops must receive the gradient from *all* of them
before it passes its own gradient on; visiting nodes in reverse topological order guarantees that.
Why zero the grads? Leaves accumulate (`+=`) into .grad, because one leaf may be used many times in one
graph; across training steps that accumulation must be reset by the optimizer's zero_grad().
"""
import contextlib
import threading

import numpy as np

REGISTRY = {}  # op name -> Function subclass; tests walk it to prove every op has a gradcheck

_state = threading.local()


def is_grad_enabled():
    return getattr(_state, "grad_enabled", True)


def _set_grad_enabled(mode):
    _state.grad_enabled = bool(mode)


class _GradMode(contextlib.ContextDecorator):
    def __init__(self, mode):
        self.mode = mode

    def __enter__(self):
        self.prev = is_grad_enabled()
        _set_grad_enabled(self.mode)

    def __exit__(self, *exc):
        _set_grad_enabled(self.prev)
        return False


def no_grad():
    """Context manager (and decorator) under which ops build no graph."""
    return _GradMode(False)


def enable_grad():
    return _GradMode(True)


class set_grad_enabled(_GradMode):
    def __init__(self, mode):
        super().__init__(mode)
        self.prev = is_grad_enabled()
        _set_grad_enabled(mode)  # like torch, also works as a plain function call

    def __enter__(self):
        pass


class Function:
    """One differentiable op. Subclasses set `name` and define forward/backward as staticmethods."""

    name = None
    saved_tensors = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name is not None:
            if cls.name in REGISTRY:
                raise ValueError(f"Two ops registered under the name {cls.name!r}.")
            REGISTRY[cls.name] = cls

    # -- the ctx API (the ctx is an instance of the op's class) --------------------------------------------
    def save_for_backward(self, *arrays):
        self.saved_tensors = arrays

    def __repr__(self):
        return f"<{type(self).__name__}Backward>"

    @classmethod
    def apply(cls, *inputs, **options):
        from .tensor import Tensor, as_array

        ref = next((t for t in inputs if isinstance(t, Tensor)), None)
        arrays = [None if t is None else as_array(t, like=ref) for t in inputs]  # None: an absent optional input
        if ref is not None and ref.xp is not np:  # host arrays among the options (targets, masks) follow the input
            options = {k: ref.xp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}
        ctx = cls()
        ctx.needs_input_grad = tuple(isinstance(t, Tensor) and t.requires_grad for t in inputs)
        track = is_grad_enabled() and any(ctx.needs_input_grad)
        out = cls.forward(ctx, *arrays, **options)  # raw arrays in, raw array out: no graph inside an op
        # NumPy reductions return scalars (np.float64), not arrays: keep every tensor an ndarray.
        result = Tensor._wrap(out if hasattr(out, "shape") and not isinstance(out, np.generic) else np.asarray(out), track)
        if track:
            ctx.parents = tuple(t if isinstance(t, Tensor) else None for t in inputs)
            result._ctx = ctx
        return result


def _topological_order(root):
    """Tensors reachable from root, each after all of its inputs (iterative DFS: deep graphs are fine)."""
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        t, done = stack.pop()
        if done:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        if t._ctx is not None:
            for p in t._ctx.parents:
                if p is not None and p.requires_grad and id(p) not in seen:
                    stack.append((p, False))
    return order


def unbroadcast(grad, shape):
    """Sum a broadcast gradient back to `shape`: d(x broadcast)/dx sums over the copied axes."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def backward(root, grad=None, retain_graph=False):
    """Accumulate d(root)/d(leaf) into every leaf's .grad, then release the graph.

    Tutorial 01's tiny_backward, with the bookkeeping (checks, dtypes, retain_grad, freeing) in the helpers below.
    """
    grads = {id(root): _seed_grad(root, grad)}  # d root / d root
    for t in reversed(_topological_order(root)):  # every tensor after all of its consumers
        g = grads.pop(id(t), None)
        if t._ctx is None:  # a leaf: accumulate into .grad
            _accumulate(t, g)
            continue
        if g is not None:
            for p, pg in _input_grads(t._ctx, g):  # the op's hand-derived backward, one gradient per input
                grads[id(p)] = grads[id(p)] + pg if id(p) in grads else pg
            if t._retains_grad:
                t.grad = _new_grad(g)
        if not retain_graph:
            _release(t)


def _seed_grad(root, grad):
    """The gradient backward() starts from: ones for a scalar, else the caller's, checked against root."""
    if not root.requires_grad:
        raise RuntimeError("backward(): this tensor does not require grad and has no graph.")
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward(): grad can be implicitly created only for scalar outputs; this output has "
                f"shape {root.shape}. Pass gradient=... of the same shape."
            )
        return root.xp.ones_like(root.data)
    from .tensor import as_array

    g0 = root.xp.asarray(as_array(grad, like=root), dtype=root.dtype)
    if g0.shape != root.shape:
        raise RuntimeError(f"backward(): gradient shape {g0.shape} does not match output shape {root.shape}.")
    return g0


def _input_grads(ctx, g):
    """(input, its gradient) for each input that needs one, summed back to the input's shape and dtype."""
    in_grads = ctx.backward(ctx, g)
    if not isinstance(in_grads, tuple):
        in_grads = (in_grads,)
    for p, pg, need in zip(ctx.parents, in_grads, ctx.needs_input_grad):
        if p is not None and pg is not None and need:
            yield p, unbroadcast(p.xp.asarray(pg), p.shape).astype(p.dtype, copy=False)


def _new_grad(g):
    """A .grad of its own (a copy), so no two tensors share one buffer that += would change for both."""
    from .tensor import Tensor

    return Tensor._wrap(g.copy(), requires_grad=False)


def _accumulate(leaf, g):
    """leaf.grad += g, in the leaf's dtype; a leaf whose graph was freed says so instead of double-counting."""
    if leaf._released:
        raise RuntimeError(
            "Trying to backward through the graph a second time: its saved values were freed "
            "after the first backward(). Pass retain_graph=True to the first call if you need this."
        )
    if g is None:
        return
    g = g.astype(leaf.dtype, copy=False)
    if leaf.grad is None:
        leaf.grad = _new_grad(g)
    else:
        leaf.grad.data += g


def _release(t):
    """Drop t's node: its saved activations are freed as soon as nobody else holds them."""
    t._ctx.parents = ()
    t._ctx.saved_tensors = ()
    t._ctx = None
    t._released = True
