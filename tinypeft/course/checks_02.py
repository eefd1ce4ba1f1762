"""Checks for tutorials/02_gradcheck.md's exercises (see checking.py for how checks behave)."""
import numpy as np

from .checking import _central_difference, _close, _exercise, _predicted


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# Exercise 1's four ops: (forward, a backward that may be wrong), both of a float64 row x and g = dL/dy.
ONES_OPS = {
    "A": (np.exp, lambda x, g: 2 * g * np.exp(x)),  # y = exp(x)
    "B": (_softmax, lambda x, g: _softmax(x) * (g - g.mean(-1, keepdims=True))),  # section 2's buggy softmax
    "C": (lambda x: x - x.mean(-1, keepdims=True), lambda x, g: g - g[..., :1]),  # centring, first entry
    "D": (lambda x: x - x.mean(-1, keepdims=True), lambda x, g: g),  # centring, the mean forgotten
}


def _passes(name, c, x):
    forward, backward = ONES_OPS[name]
    numeric = _central_difference(lambda x: float((forward(x) * c).sum()), x)
    return bool(np.allclose(backward(x, c), numeric, rtol=1e-6, atol=1e-7))


@_exercise
def check_predict_ones_cotangent(prediction):
    """prediction: the set of ONES_OPS names whose backward passes a check with c = ones; run and compared."""
    predicted = {str(p).upper() for p in _predicted(prediction)}  # first: a stub stops here
    assert predicted <= set(ONES_OPS), f"name ops from {sorted(ONES_OPS)}, got {sorted(predicted)}"
    x = np.random.default_rng(3).standard_normal(5)
    ones = {n for n in ONES_OPS if _passes(n, np.ones(5), x)}
    random_c = {n for n in ONES_OPS if _passes(n, np.random.default_rng(4).standard_normal(5), x)}
    print(f"with c = ones these pass: {sorted(ones)}; with a random c: {sorted(random_c) or 'none'}")
    assert predicted == ones, (f"you predicted {sorted(predicted)} would pass with c = ones; the run says "
                               f"{sorted(ones)}. Work out J^T 1 for each op: what does each backward return for g = 1?")


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


