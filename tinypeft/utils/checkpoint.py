"""Gradient checkpointing (torch.utils.checkpoint's name): keep a block's inputs, not its activations, and run
the block again during backward.

    forward    out = f(x)     under no_grad: no graph is built, only x is kept (and the random state)
    backward   out' = f(x')   with grad, from the kept x and the same random state (same dropout masks)
               d(out' . g)    backpropagated inside the recomputed graph; x' and f's parameters get their
                              gradients, handed back to the outer graph as this op's input gradients

So a model's peak holds every block's input and one block's activations at a time, at the price of a
second forward per block. Bit for bit the same gradients: the recomputation does the same arithmetic on
the same values. A block that is a Module (a bound method such as layer.__call__) passes its trainable
parameters in as inputs, so the op is tracked even when x itself needs no gradient (frozen embeddings,
under LoRA); other functions' closed-over parameters receive their gradients directly.
"""
import numpy as np

from ..autograd import Function, backward, enable_grad, is_grad_enabled, no_grad
from ..creation import generator
from ..tensor import Tensor


def _flatten(tree, leaves):
    """Replace every Tensor in nested tuples/lists/dicts by its index in `leaves`."""
    if isinstance(tree, Tensor):
        leaves.append(tree)
        return _Leaf(len(leaves) - 1)
    if isinstance(tree, (tuple, list)):
        return type(tree)(_flatten(t, leaves) for t in tree)
    if isinstance(tree, dict):
        return {k: _flatten(v, leaves) for k, v in tree.items()}
    return tree


def _unflatten(tree, leaves):
    if isinstance(tree, _Leaf):
        return leaves[tree.i]
    if isinstance(tree, (tuple, list)):
        return type(tree)(_unflatten(t, leaves) for t in tree)
    if isinstance(tree, dict):
        return {k: _unflatten(v, leaves) for k, v in tree.items()}
    return tree


class _Leaf:
    __slots__ = ("i",)

    def __init__(self, i):
        self.i = i


def _trainable_parameters(function):
    owner = getattr(function, "__self__", None)
    if owner is None or not hasattr(owner, "parameters"):
        return []
    return [p for p in owner.parameters() if p.requires_grad]


class Checkpoint(Function):
    name = "checkpoint"

    @staticmethod
    def forward(ctx, *arrays, function=None, structure=None, n_inputs=0, params=(), preserve_rng_state=True):
        # arrays = the tensor inputs of f, then f's trainable parameters (their values are not used here)
        ctx.rng_state = generator().bit_generator.state if preserve_rng_state else None
        inputs = [Tensor._wrap(a) for a in arrays[:n_inputs]]
        args, kwargs = _unflatten(structure, inputs)
        with no_grad():
            out = function(*args, **kwargs)
        outs = []
        ctx.out_structure = _flatten(out, outs)
        ctx.out_shapes = [o.shape for o in outs]
        ctx.function, ctx.structure, ctx.params = function, structure, params
        ctx.save_for_backward(*arrays[:n_inputs])
        # one array out: every output raveled and joined (a single output is just raveled, a view)
        return outs[0].data.reshape(-1) if len(outs) == 1 else np.concatenate([o.data.reshape(-1) for o in outs])

    @staticmethod
    def backward(ctx, g):
        # recompute f with the random state of the forward, then backpropagate g through the fresh graph
        gen = generator()
        now = gen.bit_generator.state
        if ctx.rng_state is not None:
            gen.bit_generator.state = ctx.rng_state
        need = ctx.needs_input_grad
        inputs = [Tensor._wrap(a, requires_grad=need[i]) for i, a in enumerate(ctx.saved_tensors)]
        stashed = [p.grad for p in ctx.params]
        for p in ctx.params:
            p.grad = None
        try:
            with enable_grad():
                args, kwargs = _unflatten(ctx.structure, inputs)
                out = ctx.function(*args, **kwargs)
                outs = []
                _flatten(out, outs)
                root, offset = None, 0
                for o, shape in zip(outs, ctx.out_shapes):
                    size = int(np.prod(shape))
                    piece = g[offset:offset + size].reshape(shape)
                    offset += size
                    if o.requires_grad:
                        term = o if len(outs) == 1 else (o * Tensor._wrap(piece)).sum()
                        root = term if root is None else root + term
                if root is not None:
                    backward(root, g.reshape(ctx.out_shapes[0]) if len(outs) == 1 else None)
            grads = [t.grad.data if t.grad is not None else None for t in inputs]
            grads += [p.grad.data if p.grad is not None else None for p in ctx.params]
        finally:
            for p, s in zip(ctx.params, stashed):
                p.grad = s
            gen.bit_generator.state = now
        return tuple(grads)


def checkpoint(function, *args, use_reentrant=None, preserve_rng_state=True, **kwargs):
    """function(*args, **kwargs), keeping only its inputs for backward and recomputing the rest there.

    use_reentrant is accepted for torch's signature: this one mechanism serves both of torch's, since the
    parameters of a Module's method are inputs of the op and no input has to require grad."""
    if not is_grad_enabled():
        return function(*args, **kwargs)
    inputs = []
    structure = _flatten((args, kwargs), inputs)
    params = _trainable_parameters(function)
    if not params and not any(t.requires_grad for t in inputs):
        return function(*args, **kwargs)  # no gradient can reach through the inputs: nothing to keep
    flat = Checkpoint.apply(*inputs, *params, function=function, structure=structure, n_inputs=len(inputs),
                            params=params, preserve_rng_state=preserve_rng_state)
    ctx = flat._ctx
    outs, offset = [], 0
    for shape in ctx.out_shapes:
        size = int(np.prod(shape))
        outs.append(flat.reshape(shape) if len(ctx.out_shapes) == 1 else flat[offset:offset + size].reshape(shape))
        offset += size
    return _unflatten(ctx.out_structure, outs)
