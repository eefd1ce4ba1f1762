"""conv1d / conv2d and nn.Conv1d / nn.Conv2d: behaviour, bad input, and (parity) equality with torch.

The backward passes are proven by finite differences in test_gradcheck.py (specs "conv1d", "conv2d").
"""
import numpy as np
import pytest

import tinypeft as tp
import tinypeft.functional as F

rng = np.random.default_rng(0)


def _naive_conv1d(x, w, b, stride, pad, dilation):
    """The definition, one output at a time: y[b, o, p] = sum_{c, k} w[o, c, k] x_pad[b, c, s*p + d*k] + b[o]."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad)))
    B, C, L = xp.shape
    O, _, K = w.shape
    Lo = (L - dilation * (K - 1) - 1) // stride + 1
    y = np.zeros((B, O, Lo))
    for p in range(Lo):
        for k in range(K):
            y[:, :, p] += xp[:, :, stride * p + dilation * k] @ w[:, :, k].T
    return y + b[None, :, None]


def test_conv1d_matches_the_definition():
    x, w, b = rng.standard_normal((2, 3, 13)), rng.standard_normal((5, 3, 3)), rng.standard_normal(5)
    for stride, pad, dil in [(1, 0, 1), (2, 1, 1), (1, 2, 2), (3, 0, 1)]:
        y = F.conv1d(tp.tensor(x), tp.tensor(w), tp.tensor(b), stride, pad, dil).numpy()
        np.testing.assert_allclose(y, _naive_conv1d(x, w, b, stride, pad, dil), atol=1e-12)


def test_groups_are_independent_convolutions():
    x, w = rng.standard_normal((1, 4, 9)), rng.standard_normal((6, 2, 3))
    y = F.conv1d(tp.tensor(x), tp.tensor(w), groups=2, padding=1).numpy()
    y0 = F.conv1d(tp.tensor(x[:, :2]), tp.tensor(w[:3]), padding=1).numpy()
    y1 = F.conv1d(tp.tensor(x[:, 2:]), tp.tensor(w[3:]), padding=1).numpy()
    np.testing.assert_allclose(y, np.concatenate([y0, y1], axis=1), atol=1e-12)


def test_conv2d_of_a_height_one_image_is_conv1d():
    x, w, b = rng.standard_normal((2, 3, 10)), rng.standard_normal((4, 3, 3)), rng.standard_normal(4)
    y1 = F.conv1d(tp.tensor(x), tp.tensor(w), tp.tensor(b), 2, 1, 1).numpy()
    y2 = F.conv2d(tp.tensor(x[:, :, None]), tp.tensor(w[:, :, None]), tp.tensor(b), (1, 2), (0, 1)).numpy()
    np.testing.assert_allclose(y1, y2[:, :, 0], atol=1e-12)


def test_unbatched_input_and_same_padding():
    x, w = rng.standard_normal((3, 8)), rng.standard_normal((2, 3, 4))
    y = F.conv1d(tp.tensor(x), tp.tensor(w), padding="same")
    assert y.shape == (2, 8)


def test_nn_conv_layers_have_torch_names_shapes_and_init():
    tp.manual_seed(0)
    c1 = tp.nn.Conv1d(80, 16, kernel_size=3, padding=1)
    c2 = tp.nn.Conv2d(4, 6, (3, 5), stride=2, groups=2, bias=False)
    assert [n for n, _ in c1.named_parameters()] == ["weight", "bias"]
    assert c1.weight.shape == (16, 80, 3) and c1.bias.shape == (16,)
    assert c2.weight.shape == (6, 2, 3, 5) and c2.bias is None
    bound = 1 / np.sqrt(80 * 3)  # kaiming_uniform(a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert np.abs(c1.weight.detach().numpy()).max() <= bound and np.abs(c1.weight.detach().numpy()).max() > 0.9 * bound
    assert c1(tp.randn(2, 80, 20)).shape == (2, 16, 20)
    assert c2(tp.randn(1, 4, 9, 11)).shape == (1, 6, 4, 4)


def test_bad_input_is_refused_with_the_fix():
    w = tp.randn(4, 3, 3)
    with pytest.raises(ValueError, match="channels"):
        F.conv1d(tp.randn(1, 5, 10), w)
    with pytest.raises(ValueError, match="smaller than the dilated kernel"):
        F.conv1d(tp.randn(1, 3, 2), w)
    with pytest.raises(ValueError, match="strided"):
        F.conv1d(tp.randn(1, 3, 9), w, stride=2, padding="same")
    with pytest.raises(ValueError, match="3-D"):
        F.conv2d(tp.randn(3, 5), tp.randn(1, 3, 2, 2))
    with pytest.raises(NotImplementedError, match="padding_mode"):
        tp.nn.Conv1d(3, 4, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="divisible by groups"):
        tp.nn.Conv1d(3, 4, 3, groups=2)


@pytest.mark.parity
@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("case", range(6))
def test_conv_matches_torch_forward_and_backward(n, case):
    import torch

    r = np.random.default_rng(case)
    groups = [1, 2, 1, 3, 2, 1][case]
    stride = [1, 2, 1, 1, 3, 2][case]
    padding = [0, 1, "same", "valid", 2, 1][case]
    dilation = [1, 1, 2, 1, 1, 2][case]
    stride = 1 if padding == "same" else stride
    C, O = 2 * groups, 3 * groups
    spatial = (17,) if n == 1 else (9, 11)
    kernel = (3,) if n == 1 else (3, 2)
    x, w, b = r.standard_normal((2, C) + spatial), r.standard_normal((O, C // groups) + kernel), r.standard_normal(O)
    ours = [tp.tensor(a, requires_grad=True) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    f_ours, f_theirs = (F.conv1d, torch.nn.functional.conv1d) if n == 1 else (F.conv2d, torch.nn.functional.conv2d)
    y = f_ours(*ours, stride=stride, padding=padding, dilation=dilation, groups=groups)
    yt = f_theirs(*theirs, stride=stride, padding=padding, dilation=dilation, groups=groups)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), atol=1e-12)
    cot = r.standard_normal(y.shape)
    y.backward(cot)
    yt.backward(torch.tensor(cot))
    for a, t in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), atol=1e-11)
