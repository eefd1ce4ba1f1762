"""HRA: an orthogonal product of reflections; no-op init, merge/unmerge, Gram-Schmidt, gradients by finite differences."""
import numpy as np
import pytest

import tinypeft as tp
from custom_models import MLP, ModelConv2D, inputs
from tinypeft.peft import HRAConfig, get_peft_model
from tinypeft.testing import gradcheck


@pytest.mark.parametrize("name, model, cfg", [("MLP", MLP, dict(target_modules=["lin0", "lin1"], r=2)),
                                              ("MLP", MLP, dict(target_modules=["lin0"], r=3, apply_GS=True)),
                                              ("Conv2d", ModelConv2D, dict(target_modules=["conv2d"], r=4))])
def test_hra_init_merge_unmerge(name, model, cfg):
    base = model().eval()
    with tp.no_grad():
        want = base(inputs(name)).numpy()
        if cfg["r"] % 2 == 0:
            pm = get_peft_model(base, HRAConfig(**cfg)).eval()
            np.testing.assert_allclose(pm(inputs(name)).numpy(), want, rtol=1e-5, atol=1e-5)
        pm = get_peft_model(model().eval(), HRAConfig(**cfg, init_weights=False)).eval()
        layer = pm.base_model.model.lin0 if name == "MLP" else pm.base_model.model.conv2d
        R = layer.get_delta_weight("default").data
        np.testing.assert_allclose(R @ R.T, np.eye(R.shape[0]), atol=1e-5)  # orthogonal
        W0 = layer.base_layer.weight.data.copy()
        y = pm(inputs(name)).numpy()
        pm.merge_adapter()
        np.testing.assert_allclose(pm(inputs(name)).numpy(), y, rtol=1e-4, atol=1e-4)
        pm.unmerge_adapter()
        np.testing.assert_allclose(layer.base_layer.weight.data, W0, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("gs", [False, True])
def test_hra_reflections_gradient_matches_finite_differences(gs):
    pm = get_peft_model(MLP(), HRAConfig(target_modules=["lin0"], r=3, apply_GS=gs))
    layer = pm.base_model.model.lin0
    layer.hra_u["default"] = tp.nn.Parameter(np.random.default_rng(0).standard_normal((10, 3)))  # float64
    assert gradcheck(lambda u: layer.get_delta_weight("default"), [layer.hra_u["default"]])
