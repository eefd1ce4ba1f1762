"""C3A: the block-circulant delta equals PEFT's FFT formula (circular correlation per block), merge, gradients."""
import numpy as np
import pytest

import tinypeft as tp
from custom_models import MLP, inputs
from tinypeft.peft import C3AConfig, get_peft_model
from tinypeft.testing import gradcheck


def fft_reference(x, w):
    """PEFT's BlockCircularConvolution forward in NumPy: fft(ifft(x_n) * fft(w[m, n])), summed over n."""
    M, N, b = w.shape
    xb = x.reshape(*x.shape[:-1], N, b)
    y = np.einsum("...nb,mnb->...mb", np.fft.ifft(xb), np.fft.fft(w))
    return np.fft.fft(y).real.reshape(*x.shape[:-1], M * b)


@pytest.mark.parametrize("block", [2, 5, 10])
def test_delta_is_the_fft_block_circular_convolution(block):
    pm = get_peft_model(MLP(), C3AConfig(target_modules=["lin0"], block_size=block, init_weights="gaussian"))
    layer = pm.base_model.model.lin0
    x = np.random.default_rng(0).standard_normal((4, 10))
    want = fft_reference(x, layer.c3a_kernel["default"].data.astype(np.float64)) / 10
    np.testing.assert_allclose(x @ layer.get_delta_weight("default").T, want, rtol=1e-5, atol=1e-6)


def test_init_merge_gradients():
    base = MLP().eval()
    with tp.no_grad():
        want = base(inputs("MLP")).numpy()
        pm = get_peft_model(base, C3AConfig(target_modules=["lin0"], block_size=5, init_weights=True)).eval()
        np.testing.assert_allclose(pm(inputs("MLP")).numpy(), want, rtol=1e-6)
    pm = get_peft_model(MLP().eval(), C3AConfig(target_modules=["lin0"], block_size=5)).eval()
    layer = pm.base_model.model.lin0
    with tp.no_grad():
        y = pm(inputs("MLP")).numpy()
        pm.merge_adapter()
        np.testing.assert_allclose(pm(inputs("MLP")).numpy(), y, rtol=1e-4, atol=1e-5)
        pm.unmerge_adapter()
    layer.c3a_kernel["default"] = tp.nn.Parameter(np.random.default_rng(1).standard_normal((4, 2, 5)))
    assert gradcheck(lambda w: layer.delta("default"), [layer.c3a_kernel["default"]])


def test_block_must_divide_both_sizes():
    with pytest.raises(ValueError, match="factor of the output size"):
        get_peft_model(MLP(), C3AConfig(target_modules=["lin1"], block_size=5))  # lin1 is 20 -> 2
