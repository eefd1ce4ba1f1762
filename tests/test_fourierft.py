"""FourierFT: the delta is ifft2 of the sparse spectrum, merge/unmerge (Linear and GPT-2's Conv1D), gradients."""
import numpy as np
import pytest

import tinypeft as tp
from custom_models import MLP, ModelEmbConv1D, inputs
from tinypeft.peft import FourierFTConfig, get_peft_model
from tinypeft.peft.tuners.fourierft.layer import torch_randperm
from tinypeft.testing import gradcheck


def test_delta_is_the_real_inverse_fft_of_the_sparse_spectrum():
    pm = get_peft_model(MLP(), FourierFTConfig(target_modules=["lin0"], n_frequency=30, scaling=2.0))
    layer = pm.base_model.model.lin0
    rows, cols = layer.indices["default"]
    dense = np.zeros((20, 10), dtype=np.complex128)
    dense[rows, cols] = layer.fourierft_spectrum["default"].data
    np.testing.assert_allclose(layer.get_delta_weight("default"), np.fft.ifft2(dense).real * 2.0, atol=1e-6)
    assert len(set(zip(rows.tolist(), cols.tolist()))) == 30  # distinct positions


@pytest.mark.parametrize("name, model, target", [("MLP", MLP, "lin0"), ("EmbConv1D", ModelEmbConv1D, "conv1d")])
def test_init_merge_unmerge(name, model, target):
    base = model().eval()
    with tp.no_grad():
        want = base(inputs(name)).numpy()
        pm = get_peft_model(base, FourierFTConfig(target_modules=[target], n_frequency=5, init_weights=True)).eval()
        np.testing.assert_allclose(pm(inputs(name)).numpy(), want, rtol=1e-6)
        pm = get_peft_model(model().eval(), FourierFTConfig(target_modules=[target], n_frequency=5, scaling=20.0)).eval()
        layer = getattr(pm.base_model.model, target)
        assert layer.fan_in_fan_out == (target == "conv1d")
        W0 = layer.base_layer.weight.data.copy()
        y = pm(inputs(name)).numpy()
        pm.merge_adapter()
        assert not np.allclose(layer.base_layer.weight.data, W0)
        np.testing.assert_allclose(pm(inputs(name)).numpy(), y, rtol=1e-4, atol=1e-5)
        pm.unmerge_adapter()
        np.testing.assert_allclose(layer.base_layer.weight.data, W0, rtol=1e-5, atol=1e-6)


def test_spectrum_gradient_matches_finite_differences():
    pm = get_peft_model(MLP(), FourierFTConfig(target_modules=["lin0"], n_frequency=7))
    layer = pm.base_model.model.lin0
    layer.fourierft_spectrum["default"] = tp.nn.Parameter(np.random.default_rng(0).standard_normal(7))  # float64
    x = tp.tensor(np.random.default_rng(1).standard_normal((3, 10)))
    layer.base_layer.weight = tp.nn.Parameter(layer.base_layer.weight.data.astype(np.float64), requires_grad=False)
    layer.base_layer.bias = tp.nn.Parameter(layer.base_layer.bias.data.astype(np.float64), requires_grad=False)
    assert gradcheck(lambda s: layer(x), [layer.fourierft_spectrum["default"]])


def test_randperm_is_a_seeded_permutation():
    a, b = torch_randperm(50, 777), torch_randperm(50, 777)
    assert sorted(a.tolist()) == list(range(50)) and (a == b).all() and not (a == torch_randperm(50, 778)).all()


def test_pattern_and_bad_input():
    pm = get_peft_model(MLP(), FourierFTConfig(target_modules=["lin0", "lin1"], n_frequency=12,
                                               n_frequency_pattern={"lin0": 5}))
    assert pm.base_model.model.lin0.fourierft_spectrum["default"].shape == (5,)
    assert pm.base_model.model.lin1.fourierft_spectrum["default"].shape == (12,)
    with pytest.raises(ValueError, match="less than or equal to the product"):
        get_peft_model(MLP(), FourierFTConfig(target_modules=["lin1"]))  # 1000 frequencies > 20 * 2 weights
    with pytest.raises(NotImplementedError, match="bias"):
        FourierFTConfig(bias="all")
