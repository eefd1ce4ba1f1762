"""The wiring a reader follows: public names listed, Tensor methods where go-to-definition finds them,
and every fast path checked against the plain reference that sits beside it."""
import inspect

import numpy as np
import pytest

import tinypeft as tp
import tinypeft.peft


def test_every_public_name_is_imported_explicitly_and_listed_in_all():
    assert len(tp.__all__) == len(set(tp.__all__))
    assert [n for n in tp.__all__ if not hasattr(tp, n)] == []
    peft_names = {k for k in vars(tinypeft.peft) if k[0].isupper() or k == "get_peft_model"}
    assert peft_names - set(tp.__all__) == set()
    source = inspect.getsource(tp)
    assert "globals()" not in source and "import *" not in source


@pytest.mark.parametrize("name", ["sum", "mean", "max", "view", "reshape", "transpose", "softmax", "exp", "__add__",
                                  "__matmul__", "__getitem__", "masked_fill", "T"])
def test_tensor_methods_are_written_in_the_class_body(name):
    # go-to-definition on x.sum must land in tensor.py, one line from the op it calls
    assert name in tp.Tensor.__dict__
    member = tp.Tensor.__dict__[name]
    fn = member.fget if isinstance(member, property) else member
    assert inspect.getsourcefile(fn).endswith("tensor.py")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(), (7,), (3, 5), (70_000,), (2, 300, 257)])  # the last two run on threads
def test_fast_tanh_gelu_matches_the_one_line_reference(shape, dtype):
    from tinypeft.ops.elementwise import gelu_tanh_backward_reference, gelu_tanh_reference

    rng = np.random.default_rng(0)
    x_np = (rng.standard_normal(shape) * 3).astype(dtype)
    g_np = rng.standard_normal(shape).astype(dtype)
    x = tp.tensor(x_np, requires_grad=True)
    y = tp.functional.gelu(x, approximate="tanh")
    y.backward(tp.tensor(g_np))
    # float32: the two orders of rounding differ by a few ulps of |x| (up to ~10), near-zero outputs included
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y.detach().numpy(), gelu_tanh_reference(x_np), **tol)
    np.testing.assert_allclose(x.grad.numpy(), gelu_tanh_backward_reference(x_np, g_np), **tol)
    assert y.dtype == dtype and x.grad.dtype == dtype


def test_the_tanh_gelu_reference_is_the_formula_and_its_derivative():
    from tinypeft.ops.elementwise import gelu_tanh_backward_reference, gelu_tanh_reference

    x = np.linspace(-6, 6, 101)
    want = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(gelu_tanh_reference(x), want, rtol=1e-14)
    h = 1e-6  # central differences of the reference check its derivative
    numeric = (gelu_tanh_reference(x + h) - gelu_tanh_reference(x - h)) / (2 * h)
    np.testing.assert_allclose(gelu_tanh_backward_reference(x, np.ones_like(x)), numeric, rtol=1e-6, atol=1e-8)
