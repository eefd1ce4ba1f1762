"""HiRA: the update is W0 * (B A); no-op init, merge/unmerge restoring W0, gradients, every layer type."""
import numpy as np
import pytest

import tinypeft as tp
from custom_models import MLP, ModelConv1D, ModelConv2D, ModelEmbConv1D, inputs
from tinypeft.peft import HiraConfig, get_peft_model
from tinypeft.testing import gradcheck

CASES = [("MLP", MLP, "lin0"), ("EmbConv1D", ModelEmbConv1D, "conv1d"), ("EmbConv1D", ModelEmbConv1D, "emb"),
         ("Conv1d", ModelConv1D, "conv1d"), ("Conv2d", ModelConv2D, "conv2d")]


@pytest.mark.parametrize("name, model, target", CASES)
def test_init_merge_unmerge(name, model, target):
    tp.manual_seed(0)
    base = model().eval()
    with tp.no_grad():
        want = base(inputs(name)).numpy()
        pm = get_peft_model(base, HiraConfig(target_modules=[target], r=4)).eval()
        np.testing.assert_allclose(pm(inputs(name)).numpy(), want, rtol=1e-6)
        pm = get_peft_model(model().eval(), HiraConfig(target_modules=[target], r=4, init_weights=False)).eval()
        layer = getattr(pm.base_model.model, target)
        W0 = layer.base_layer.weight.data.copy()
        y = pm(inputs(name)).numpy()
        pm.merge_adapter()
        np.testing.assert_allclose(layer.base_layer.weight.data, W0 * (1 + layer.get_delta_weight("default")),
                                   rtol=1e-5, atol=1e-6)  # W0 + W0 * (B A)
        np.testing.assert_allclose(pm(inputs(name)).numpy(), y, rtol=1e-4, atol=1e-4)
        pm.unmerge_adapter()
        np.testing.assert_array_equal(layer.base_layer.weight.data, W0)


def test_gradients_match_finite_differences():
    pm = get_peft_model(MLP(), HiraConfig(target_modules=["lin0"], r=3, init_weights=False))
    layer = pm.base_model.model.lin0
    for d in (layer.hira_A, layer.hira_B):
        d["default"] = tp.nn.Parameter(d["default"].data.astype(np.float64))
    layer.base_layer.weight = tp.nn.Parameter(layer.base_layer.weight.data.astype(np.float64), requires_grad=False)
    layer.base_layer.bias = tp.nn.Parameter(layer.base_layer.bias.data.astype(np.float64), requires_grad=False)
    x = tp.tensor(np.random.default_rng(0).standard_normal((3, 10)))
    assert gradcheck(lambda a, b: layer(x), [layer.hira_A["default"], layer.hira_B["default"]])


def test_refused_options():
    with pytest.raises(NotImplementedError, match="rank_pattern"):
        HiraConfig(rank_pattern={"lin0": 2})
    with pytest.raises(ValueError, match="Unknown initialization"):
        HiraConfig(init_weights="pissa")
