"""Checks for tutorials/02_gradcheck.md's exercises (see checking.py for how checks behave)."""
import numpy as np

from .checking import _close, _exercise


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


