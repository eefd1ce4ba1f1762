"""MiSS: the shared block (default, padded, mini, bat), its merge/unmerge, and gradients by finite differences."""
import numpy as np
import pytest

import tinypeft as tp
from custom_models import MLP, inputs
from tinypeft.peft import MissConfig, get_peft_model
from tinypeft.testing import gradcheck


@pytest.mark.parametrize("cfg", [dict(r=2), dict(r=3), dict(r=4, init_weights="mini", mini_r=5),
                                 dict(r=2, init_weights="bat")])
def test_miss_forward_is_the_merged_weight_and_unmerges(cfg):
    pm = get_peft_model(MLP().eval(), MissConfig(target_modules=["lin0"], **cfg)).eval()
    layer = pm.base_model.model.lin0
    blk = layer.miss_block["default"]
    blk.data[...] = np.random.default_rng(0).standard_normal(blk.shape).astype(np.float32) * 0.3
    W0 = layer.base_layer.weight.data.copy()
    with tp.no_grad():
        y = pm(inputs("MLP")).numpy()
        pm.merge_adapter()
        np.testing.assert_allclose(pm(inputs("MLP")).numpy(), y, rtol=1e-5, atol=1e-5)
        pm.unmerge_adapter()
    np.testing.assert_allclose(layer.base_layer.weight.data, W0, rtol=1e-4, atol=1e-5)


def test_miss_bat_delta_gradient_matches_finite_differences():
    pm = get_peft_model(MLP(), MissConfig(target_modules=["lin0"], r=2, init_weights="bat"))
    layer = pm.base_model.model.lin0
    W = tp.tensor(np.random.default_rng(1).standard_normal((20, 10)))
    B = tp.nn.Parameter(np.random.default_rng(2).standard_normal((10, 2, 2)))  # float64 for the check
    layer.miss_block["default"] = B
    assert gradcheck(lambda b: layer._bat_delta("default", W), [B])
