"""Checks for the tutorials' exercises. Each takes your answer, tries it against an independent
reference (finite differences, NumPy, or tinypeft's own op), prints "passed", and returns True.

A wrong answer raises AssertionError saying what is off. A stub you have not filled in yet (it raises
NotImplementedError) only prints "not done yet" and returns False, so a tutorial runs top to bottom
before you have done its exercises.

    from tutorials.exercises.checks import check_value_exp
    check_value_exp(value_exp, Value)
"""
import functools
import math
import sys

import numpy as np


def _exercise(fn):
    @functools.wraps(fn)
    def check(*args, **kwargs):
        try:
            fn(*args, **kwargs)
        except NotImplementedError:
            print(f"{fn.__name__}: not done yet - fill in the stub above, then run this cell again.")
            return False
        print(f"{fn.__name__}: passed")
        return True

    return check


def _close(got, want, what, rtol=1e-6, atol=1e-8):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    if not np.allclose(got, want, rtol=rtol, atol=atol):
        i = np.unravel_index(np.argmax(np.abs(got - want)), got.shape) if got.ndim else ()
        raise AssertionError(f"{what}: got {got[i]:.8g} at {i}, expected {want[i]:.8g}")


def _central_difference(f, x, eps=1e-6):
    """d f(x) / dx for a scalar function of a float64 array, one coordinate at a time."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f(x)
        x[i] = old - eps
        down = f(x)
        x[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad


def _central_difference_in_place(f, a, eps=1e-6):
    """d f() / d a, for a float64 array `a` that f() reads: each element nudged in place, then restored."""
    grad = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + eps
        up = f()
        a[i] = old - eps
        down = f()
        a[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad


# ---- 01 autograd -------------------------------------------------------------------------------------


@_exercise
def check_value_exp(value_exp, Value):
    """value_exp(v) -> Value e^v with a _backward closure; its gradient against central differences."""
    for x0 in (-1.3, 0.0, 0.7, 2.0):
        x = Value(x0)
        y = value_exp(x)
        _close(y.data, math.exp(x0), f"value_exp({x0}).data")
        z = y * y + y * x  # y and x are both used twice: every use must add to their grads
        z.backward()
        want = 2 * math.exp(2 * x0) + (1 + x0) * math.exp(x0)
        _close(x.grad, want, f"d(e^2x + x e^x)/dx at x = {x0}")


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


# ---- 02 gradcheck --------------------------------------------------------------------------------------


@_exercise
def check_numerical_gradient(numerical_gradient):
    """numerical_gradient(f, x, c, eps) -> d sum(f(x) * c)/dx, against the gradient worked out by hand."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4))
    w = rng.standard_normal((4, 2))
    c = rng.standard_normal((3, 2))
    x_before = x.copy()

    def f(x):  # [3, 4] -> [3, 2]
        return np.tanh(x) @ w

    got = numerical_gradient(f, x, c)
    assert got is not None, "numerical_gradient returned None; return the gradient array"
    np.testing.assert_array_equal(x, x_before, err_msg="numerical_gradient must leave x as it found it")
    want = (c @ w.T) * (1 - np.tanh(x) ** 2)  # chain rule: dL/dy = c, dy/dtanh = w, dtanh = 1 - tanh^2
    # rtol 1e-8: central differences (error ~1e-11 here) pass, forward differences (error ~1e-6) do not
    _close(got, want, "d sum(tanh(x) @ w * c)/dx", rtol=1e-8, atol=1e-9)


@_exercise
def check_softplus(Softplus):
    """Softplus.apply(x): values against np.logaddexp, no overflow, dtype kept, and gradcheck in float64."""
    import tinypeft as tp
    from tinypeft.testing import gradcheck

    x = np.array([-800.0, -30.0, -1.5, 0.0, 0.3, 2.0, 30.0, 800.0])
    with np.errstate(all="ignore"):
        y = Softplus.apply(tp.tensor(x)).numpy()
    _close(y, np.logaddexp(0, x), "softplus(x) (x from -800 to 800; e^800 overflows float64)", rtol=1e-10)
    y32 = Softplus.apply(tp.tensor(x[1:-1].astype(np.float32)))
    assert y32.dtype == np.float32, f"softplus of float32 returned {y32.dtype}; keep the input's dtype"

    t = tp.tensor(x, requires_grad=True)
    with np.errstate(all="ignore"):
        Softplus.apply(t).sum().backward()
    _close(t.grad.numpy(), 0.5 * (1 + np.tanh(x / 2)), "d softplus / dx = sigmoid(x) (x from -800 to 800)", rtol=1e-10)

    rng = np.random.default_rng(2)
    for shape in [(), (5,), (2, 3)]:
        t = tp.tensor(rng.uniform(-4, 4, size=shape), requires_grad=True)
        assert gradcheck(Softplus.apply, [t])


@_exercise
def check_broadcastable_shapes(broadcastable_shapes):
    """broadcastable_shapes() -> a hypothesis strategy of (a, b) shape pairs that broadcast, covering the edge cases."""
    from hypothesis import HealthCheck, given, settings

    strategy = broadcastable_shapes()
    assert strategy is not None, "broadcastable_shapes() returned None; return a strategy"
    seen = {"different numbers of dims": False, "a 1 stretched in a": False, "a 1 stretched in b": False,
            "equal shapes": False, "a 0-d shape": False}  # fmt: skip

    @settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def each(pair):
        a, b = (tuple(s) for s in pair)
        assert len(a) <= 3 and len(b) <= 3, f"{a}, {b}: keep to 0-3 dims"
        try:
            out = np.broadcast_shapes(a, b)
        except ValueError:
            raise AssertionError(f"the pair {a}, {b} does not broadcast") from None
        seen["different numbers of dims"] |= len(a) != len(b)
        seen["a 1 stretched in a"] |= any(n == 1 and m > 1 for n, m in zip(a[::-1], out[::-1]))
        seen["a 1 stretched in b"] |= any(n == 1 and m > 1 for n, m in zip(b[::-1], out[::-1]))
        seen["equal shapes"] |= a == b
        seen["a 0-d shape"] |= a == () or b == ()

    each()
    missing = [case for case, hit in seen.items() if not hit]
    assert not missing, f"200 pairs never had: {', '.join(missing)}"


# ---- 03 matmul -----------------------------------------------------------------------------------------


@_exercise
def check_pack_a(pack_a):
    """pack_a(a, mr) -> flat panels, out[p*k*mr + l*mr + i] = A[p*mr + i, l], zeros past the last row."""
    rng = np.random.default_rng(3)
    for m, k, mr in [(12, 5, 6), (13, 7, 6), (1, 3, 4), (9, 1, 4)]:
        a = rng.standard_normal((m, k))
        got = pack_a(a, mr)
        assert got is not None, "pack_a returned None; return the packed array"
        got = np.asarray(got)
        panels = -(-m // mr)
        assert got.ndim == 1, f"pack_a({m}x{k}, mr={mr}): return a flat 1-D array, got shape {got.shape}"
        want = np.zeros(panels * k * mr)
        for p in range(panels):
            for l in range(k):
                for i in range(mr):
                    if p * mr + i < m:
                        want[p * k * mr + l * mr + i] = a[p * mr + i, l]
        _close(got, want, f"pack_a({m}x{k}, mr={mr})", rtol=0, atol=0)


@_exercise
def check_micro_kernel(micro_kernel):
    """micro_kernel(a_packed, b_packed, kc, mr, nr) -> the [mr, nr] tile A_panel @ B_panel."""
    rng = np.random.default_rng(4)
    for kc, mr, nr in [(7, 6, 8), (1, 4, 4), (33, 6, 16)]:
        a = rng.standard_normal((mr, kc))  # the panel of A: mr rows
        b = rng.standard_normal((kc, nr))  # the panel of B: nr columns
        a_packed = a.T.reshape(-1).copy()  # [l*mr + i] = a[i, l]
        b_packed = b.reshape(-1).copy()  # [l*nr + j] = b[l, j]
        got = micro_kernel(a_packed, b_packed, kc, mr, nr)
        assert got is not None, "micro_kernel returned None; return the tile"
        _close(got, a @ b, f"micro_kernel(kc={kc}, mr={mr}, nr={nr})", rtol=1e-12, atol=1e-12)


@_exercise
def check_tiled_matmul(tiled_matmul):
    """tiled_matmul(a, b, tile) -> a @ b, for sizes that are and are not multiples of the tile."""
    rng = np.random.default_rng(5)
    for (m, k, n), tile in [((8, 8, 8), 4), ((13, 9, 11), 4), ((5, 17, 3), 8), ((4, 4, 4), 16)]:
        a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
        got = tiled_matmul(a, b, tile)
        assert got is not None, "tiled_matmul returned None; return C"
        _close(got, a @ b, f"tiled_matmul({m}x{k} @ {k}x{n}, tile={tile})", rtol=1e-10, atol=1e-10)


# ---- 04 attention --------------------------------------------------------------------------------------


def _np_softmax(x):
    m = np.max(x, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    e = np.exp(x - m)
    total = e.sum(axis=-1, keepdims=True)
    return e / np.where(total == 0, 1, total)


def _np_gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


@_exercise
def check_gelu_backward(gelu_backward):
    """gelu_backward(x, dy) -> dL/dx for GPT-2's tanh GELU, against central differences and tinypeft's gelu."""
    import tinypeft as tp

    rng = np.random.default_rng(7)
    for shape in [(7,), (3, 4)]:
        x = rng.standard_normal(shape) * 3  # far into both tails too, where GELU bends
        dy = rng.standard_normal(shape)
        got = gelu_backward(x.copy(), dy.copy())
        assert got is not None, "gelu_backward returned None; return dx"
        want = _central_difference(lambda x: float((_np_gelu_tanh(x) * dy).sum()), x)
        _close(got, want, f"GELU backward, shape {shape}, vs central differences", rtol=1e-6, atol=1e-8)
        t = tp.tensor(x, requires_grad=True)
        (tp.functional.gelu(t, approximate="tanh") * tp.tensor(dy)).sum().backward()
        _close(got, t.grad.numpy(), f"GELU backward, shape {shape}, vs tinypeft", rtol=1e-9, atol=1e-12)


def _np_attention(q, k, v, mask):
    s = np.where(mask, q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1]), -np.inf)
    return _np_softmax(s) @ v


@_exercise
def check_attention_backward(attention_backward):
    """attention_backward(q, k, v, mask, dO) -> (dq, dk, dv), against central differences and tinypeft."""
    import tinypeft as tp
    import tinypeft.functional as F

    rng = np.random.default_rng(8)
    L, S, d, dv = 4, 5, 3, 2
    masks = {
        "no mask": np.ones((L, S), dtype=bool),
        "random mask": rng.random((L, S)) > 0.4,
        "query 2 sees no key": np.tril(np.ones((L, S), dtype=bool), 1) & (np.arange(L)[:, None] != 2),
    }
    masks["random mask"][:, 0] = True
    for what, mask in masks.items():
        q, k, v = rng.standard_normal((2, L, d)), rng.standard_normal((2, S, d)), rng.standard_normal((2, S, dv))
        dO = rng.standard_normal((2, L, dv))
        with np.errstate(all="ignore"):
            got = attention_backward(q, k, v, mask, dO)
        assert got is not None and len(got) == 3, "attention_backward must return (dq, dk, dv)"
        names = ("dq", "dk", "dv")
        for name, g in zip(names, got):
            assert np.all(np.isfinite(g)), f"{what}: {name} has nan or inf (a fully masked row must give P = 0)"
        for name, a, g in zip(names, (q, k, v), got):
            want = _central_difference_in_place(lambda: float((_np_attention(q, k, v, mask) * dO).sum()), a)
            _close(g, want, f"{what}: {name} vs central differences", rtol=1e-6, atol=1e-8)
        tq, tk, tv = (tp.tensor(a, requires_grad=True) for a in (q, k, v))
        (F.scaled_dot_product_attention(tq, tk, tv, attn_mask=tp.tensor(mask)) * tp.tensor(dO)).sum().backward()
        for name, t, g in zip(names, (tq, tk, tv), got):
            _close(g, t.grad.numpy(), f"{what}: {name} vs tinypeft", rtol=1e-9, atol=1e-12)


def _np_rms_norm(x, w, eps):
    return w * x / np.sqrt((x * x).mean(-1, keepdims=True) + eps)


@_exercise
def check_rms_norm_backward(rms_norm_backward):
    """rms_norm_backward(x, w, dy, eps) -> (dx, dw), against central differences and tinypeft's rms_norm."""
    import tinypeft as tp

    rng = np.random.default_rng(9)
    for shape in [(4, 6), (2, 3, 5)]:
        n = shape[-1]
        x, w, dy = rng.standard_normal(shape), 1 + 0.3 * rng.standard_normal(n), rng.standard_normal(shape)
        got = rms_norm_backward(x.copy(), w.copy(), dy.copy(), eps=1e-6)
        assert got is not None and len(got) == 2, "rms_norm_backward must return (dx, dw)"
        for name, a, d in zip(("dx", "dw"), (x, w), got):
            want = _central_difference_in_place(lambda: float((_np_rms_norm(x, w, 1e-6) * dy).sum()), a)
            _close(d, want, f"RMSNorm {name}, x of shape {shape}, vs central differences", rtol=1e-6, atol=1e-8)
        tx, tw = tp.tensor(x, requires_grad=True), tp.tensor(w, requires_grad=True)
        (tp.functional.rms_norm(tx, (n,), tw, eps=1e-6) * tp.tensor(dy)).sum().backward()
        for name, t, d in zip(("dx", "dw"), (tx, tw), got):
            _close(d, t.grad.numpy(), f"RMSNorm {name}, x of shape {shape}, vs tinypeft", rtol=1e-9, atol=1e-12)
