"""conv1d / conv2d / conv3d and nn.Conv1d / 2d / 3d: behaviour, bad input, and (parity) equality with torch.

The backward passes are proven by finite differences in test_gradcheck.py (specs "conv1d", "conv2d", "conv3d").
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


def test_conv3d_of_a_depth_one_volume_is_conv2d():
    x, w, b = rng.standard_normal((2, 4, 7, 6)), rng.standard_normal((6, 2, 3, 2)), rng.standard_normal(6)
    y2 = F.conv2d(tp.tensor(x), tp.tensor(w), tp.tensor(b), (2, 1), (1, 0), (1, 2), groups=2).numpy()
    y3 = F.conv3d(tp.tensor(x[:, :, None]), tp.tensor(w[:, :, None]), tp.tensor(b), (1, 2, 1), (0, 1, 0), (1, 1, 2),
                  groups=2).numpy()
    np.testing.assert_allclose(y3[:, :, 0], y2, atol=1e-12)


def test_conv3d_matches_the_definition():
    """y[b, o, p] = sum_{c, k} w[o, c, k] x_pad[b, c, s*p + d*k] + b[o], one output position at a time."""
    x, w, b = rng.standard_normal((2, 3, 5, 6, 4)), rng.standard_normal((4, 3, 2, 3, 2)), rng.standard_normal(4)
    stride, pad, dil = (1, 2, 1), (1, 0, 1), (2, 1, 1)
    y = F.conv3d(tp.tensor(x), tp.tensor(w), tp.tensor(b), stride, pad, dil).numpy()
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple((p, p) for p in pad))
    want = np.zeros(y.shape)
    for p in np.ndindex(*y.shape[2:]):
        for k in np.ndindex(*w.shape[2:]):
            at = tuple(s * i + d * j for s, i, d, j in zip(stride, p, dil, k))
            want[(slice(None), slice(None)) + p] += xp[(slice(None), slice(None)) + at] @ w[(slice(None), slice(None)) + k].T
    np.testing.assert_allclose(y, want + b[None, :, None, None, None], atol=1e-12)


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
    c3 = tp.nn.Conv3d(5, 10, 3, padding=(1, 0, 0), dilation=(1, 2, 1))
    assert [n for n, _ in c3.named_parameters()] == ["weight", "bias"]
    assert c3.weight.shape == (10, 5, 3, 3, 3) and c3.bias.shape == (10,)
    assert c3(tp.randn(2, 5, 3, 6, 3)).shape == (2, 10, 3, 2, 1)
    assert c3(tp.randn(5, 3, 6, 3)).shape == (10, 3, 2, 1)  # unbatched, as torch
    assert repr(c3) == "Conv3d(5, 10, kernel_size=(3, 3, 3), stride=(1, 1, 1), padding=(1, 0, 0), dilation=(1, 2, 1))"


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
    with pytest.raises(NotImplementedError, match="padding_mode"):
        tp.nn.Conv3d(3, 4, 3, padding_mode="circular")
    with pytest.raises(ValueError, match="5-D weight"):
        F.conv3d(tp.randn(1, 3, 4, 4, 4), tp.randn(4, 3, 3, 3))
    with pytest.raises(ValueError, match="tuple of 3 ints"):
        F.conv3d(tp.randn(1, 3, 4, 4, 4), tp.randn(4, 3, 1, 1, 1), stride=(1, 2))


@pytest.mark.parity
@pytest.mark.parametrize("n", [1, 2, 3])
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
    spatial = {1: (17,), 2: (9, 11), 3: (7, 9, 6)}[n]
    kernel = {1: (3,), 2: (3, 2), 3: (3, 2, 2)}[n]
    x, w, b = r.standard_normal((2, C) + spatial), r.standard_normal((O, C // groups) + kernel), r.standard_normal(O)
    ours = [tp.tensor(a, requires_grad=True) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    f_ours, f_theirs = getattr(F, f"conv{n}d"), getattr(torch.nn.functional, f"conv{n}d")
    y = f_ours(*ours, stride=stride, padding=padding, dilation=dilation, groups=groups)
    yt = f_theirs(*theirs, stride=stride, padding=padding, dilation=dilation, groups=groups)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), atol=1e-12)
    cot = r.standard_normal(y.shape)
    y.backward(cot)
    yt.backward(torch.tensor(cot))
    for a, t in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), atol=1e-11)
