"""Checks for tutorials/01_autograd.md's exercises (see checking.py for how checks behave)."""
import math
import sys

import numpy as np

from .checking import _central_difference, _close, _exercise


@_exercise
def check_value_exp(value_exp, Value):
    """value_exp(v) -> a Value holding e^v, with v among its parents (_prev) and a _backward closure."""
    for x0 in (-1.3, 0.0, 0.7, 2.0):
        u = Value(x0)
        x = u * 1.0  # x has a parent of its own: its _backward must run after every use of x has added to x.grad
        y = value_exp(x)
        assert isinstance(y, Value), f"value_exp returned a {type(y).__name__}; return a Value"
        _close(y.data, math.exp(x0), f"value_exp({x0}).data")
        assert any(p is x for p in y._prev), (
            "the Value you return must list its input among its parents (_prev = (v,)): without it backward() "
            "cannot order the graph, and a node computed from v gets its gradient too early")
        z = y * y + y * x  # y and x are both used twice: every use must add to their grads
        z.backward()
        want = 2 * math.exp(2 * x0) + (1 + x0) * math.exp(x0)
        _close(u.grad, want, f"d(e^2x + x e^x)/dx at x = {x0}")


@_exercise
def check_topological_order(topological_order, Value):
    """topological_order(root) -> every Value reachable from root once, each after all of its children."""

    def verify(root, what):
        order = topological_order(root)
        assert order is not None, f"{what}: topological_order returned None; return the list"
        order = list(order)
        ids = [id(v) for v in order]
        assert len(set(ids)) == len(ids), f"{what}: a node appears twice in the order"
        reachable, stack = set(), [root]
        while stack:
            v = stack.pop()
            if id(v) not in reachable:
                reachable.add(id(v))
                stack.extend(v._prev)
        assert set(ids) == reachable, f"{what}: the order has {len(set(ids))} nodes, {len(reachable)} are reachable"
        position = {i: n for n, i in enumerate(ids)}
        for v in order:
            for child in v._prev:
                assert position[id(child)] < position[id(v)], (
                    f"{what}: a node ({v._op!r}) comes before one of its inputs ({child._op!r}); "
                    "every node must come after everything it was computed from"
                )
        assert order[-1] is root, f"{what}: the root must come last"

    x = Value(3.0)
    a = x * x
    verify(a + a * 2, "the diamond L = a + 2a, a = x*x")
    y = Value(0.5)
    node = y
    for _ in range(5 * sys.getrecursionlimit()):  # deeper than Python's recursion limit
        node = node * 1.0 + y
    try:
        verify(node, "a chain 5x deeper than the recursion limit")
    except RecursionError:
        raise AssertionError(
            "RecursionError on a deep graph: walk it with an explicit stack instead of recursion"
        ) from None


@_exercise
def check_unbroadcast(unbroadcast):
    """unbroadcast(grad, shape) -> grad summed back to `shape`, as tinypeft.autograd.unbroadcast does."""
    rng = np.random.default_rng(0)
    cases = [
        ((3, 4), (3, 4)),  # nothing to do
        ((3, 4), (4,)),  # a leading dim was added
        ((3, 4), (3, 1)),  # a size-1 dim was stretched
        ((2, 3, 4), (1, 4)),  # both
        ((2, 3, 4), ()),  # a scalar broadcast everywhere
        ((5, 1, 4), (1, 1, 1)),
    ]
    for out_shape, shape in cases:
        grad = rng.standard_normal(out_shape)
        got = unbroadcast(grad, shape)
        assert got is not None, "unbroadcast returned None; return the summed gradient"
        # the reference: the gradient of sum(broadcast_to(x, out_shape) * grad) with respect to x
        want = _central_difference(lambda x: float((np.broadcast_to(x, out_shape) * grad).sum()), np.zeros(shape))
        _close(got, want, f"unbroadcast(grad {out_shape}, shape {shape})", rtol=1e-5, atol=1e-6)


