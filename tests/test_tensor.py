"""Tensor semantics: dtypes, broadcasting gradients, accumulation, no_grad, and the graph being freed."""
import gc
import weakref

import numpy as np
import pytest

import tinypeft as tp


def test_default_dtype_is_float32_and_float64_is_kept():
    assert tp.tensor([1.0, 2.0]).dtype == np.float32
    assert tp.tensor(np.zeros(3)).dtype == np.float64
    assert tp.tensor([1, 2]).dtype == np.int64
    x = tp.tensor([1.0, 2.0])
    assert (x * 2.0).dtype == np.float32  # Python numbers follow the tensor
    assert (x + 1).dtype == np.float32


def test_facts_and_conversions():
    x = tp.randn(2, 3)
    assert x.shape == (2, 3) and x.ndim == 2 and x.numel() == 6 and x.size(1) == 3
    assert isinstance(x.numpy(), np.ndarray)
    assert tp.tensor([[3.0]]).item() == 3.0
    assert x.double().dtype == np.float64


def test_numpy_of_a_tensor_that_requires_grad_is_an_error_like_torch():
    x = tp.randn(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        x.numpy()
    assert x.detach().numpy().shape == (2,)


def test_broadcast_gradient_is_reduced_to_each_operand_shape():
    a = tp.tensor(np.ones((2, 1, 3)), requires_grad=True)
    b = tp.tensor(np.arange(3.0), requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.shape == (2, 1, 3) and b.grad.shape == (3,)
    np.testing.assert_allclose(b.grad.numpy(), [2.0, 2.0, 2.0])
    np.testing.assert_allclose(a.grad.numpy(), np.broadcast_to(np.arange(3.0), (2, 1, 3)))


def test_a_tensor_used_twice_accumulates_both_gradients():
    x = tp.tensor(np.array([3.0]), requires_grad=True)
    y = x * x + x  # dy/dx = 2x + 1 = 7
    y.sum().backward()
    assert x.grad.item() == 7.0


def test_leaf_grads_accumulate_across_backward_calls_until_zeroed():
    x = tp.tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])


def test_two_leaves_never_share_one_grad_buffer():
    x = tp.tensor(np.ones(2), requires_grad=True)
    y = tp.tensor(np.ones(2), requires_grad=True)
    (x + y).sum().backward()
    x.grad.data *= 10
    assert y.grad.numpy().tolist() == [1.0, 1.0]


def test_no_grad_builds_no_graph():
    x = tp.randn(3, requires_grad=True)
    with tp.no_grad():
        y = (x * 2).exp().sum()
    assert not y.requires_grad and y.grad_fn is None

    @tp.no_grad()
    def f(t):
        return t * 2

    assert f(x).grad_fn is None
    assert (x * 2).grad_fn is not None and tp.is_grad_enabled()


def test_constants_get_no_gradient_and_build_no_graph():
    x = tp.randn(3)
    y = x * 2 + 1
    assert not y.requires_grad and y.grad_fn is None


def test_backward_needs_a_scalar_or_a_gradient():
    x = tp.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2).backward()
    (x * 2).backward(np.ones(3, dtype=np.float32))
    np.testing.assert_allclose(x.grad.numpy(), 2.0)


def test_backward_twice_through_a_freed_graph_is_a_clear_error():
    x = tp.randn(3, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    z = (x * x).sum()
    z.backward(retain_graph=True)
    z.backward()  # allowed with retain_graph, and accumulates
    np.testing.assert_allclose(x.grad.numpy(), 3 * 2 * x.detach().numpy(), rtol=1e-6)  # y once, z twice


def test_graph_is_released_after_backward():
    # After backward the nodes drop their saved arrays: intermediate activations are freed at once,
    # even while the output tensor is still alive (no reference cycle keeps them).
    gc.disable()
    try:
        x = tp.randn(50, 50, requires_grad=True)
        h = (x @ x).tanh()
        saved = h.grad_fn.saved_tensors[0]  # tanh saves its output array
        ref = weakref.ref(saved)
        del saved
        loss = (h * h).sum()
        del h
        assert ref() is not None  # alive: the graph holds it
        loss.backward()
        assert ref() is None  # freed by reference counting alone, no gc needed
        assert loss.grad_fn is None
    finally:
        gc.enable()


def test_inplace_on_a_leaf_that_requires_grad_is_refused():
    w = tp.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="no_grad"):
        w.zero_()
    with tp.no_grad():
        w.zero_()
    assert w.detach().numpy().tolist() == [0.0, 0.0, 0.0]


def test_methods_mirror_torch():
    x = tp.tensor(np.arange(6.0).reshape(2, 3))
    assert x.sum(dim=1).numpy().tolist() == [3.0, 12.0]
    assert x.mean(1, keepdim=True).shape == (2, 1)
    values, indices = x.max(dim=1)
    assert values.numpy().tolist() == [2.0, 5.0] and indices.numpy().tolist() == [2, 2]
    assert x.max().item() == 5.0
    assert x.transpose(0, 1).shape == (3, 2) and x.T.shape == (3, 2)
    assert x.view(3, 2).shape == (3, 2) and x.unsqueeze(0).shape == (1, 2, 3)
    assert [t.shape for t in x.split(2, dim=1)] == [(2, 2), (2, 1)]
    assert (x > 2).numpy().tolist() == [[False, False, False], [True, True, True]]
    assert tp.cat([x, x], dim=0).shape == (4, 3) and tp.stack([x, x], dim=1).shape == (2, 2, 3)


def test_deep_graphs_do_not_hit_the_recursion_limit():
    x = tp.tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.sum().backward()
    assert np.isclose(x.grad.item(), 1.0001**5000)
