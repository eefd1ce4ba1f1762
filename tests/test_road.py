"""RoAd: each output pair (i, i + g/2) rotated and scaled as the formula says, merge/unmerge, gradients."""
import numpy as np
import pytest

import tinypeft as tp
from custom_models import MLP, inputs
from tinypeft.peft import RoadConfig, get_peft_model
from tinypeft.testing import gradcheck


@pytest.mark.parametrize("variant", ["road_1", "road_2", "road_4"])
def test_pairs_rotate_as_the_formula_says(variant):
    pm = get_peft_model(MLP().eval(), RoadConfig(target_modules=["lin0"], variant=variant, group_size=4,
                                                 init_weights=False)).eval()
    layer = pm.base_model.model.lin0
    t, a = layer.road_theta["default"].data, layer.road_alpha["default"].data
    x = np.random.default_rng(0).standard_normal((3, 10)).astype(np.float32)
    with tp.no_grad():
        y = layer.base_layer(tp.tensor(x)).numpy()
        got = layer(tp.tensor(x)).numpy()
    want = np.empty_like(y)
    for i in range(20):
        group, k = divmod(i, 4)
        first = k < 2
        j = i + 2 if first else i - 2  # the partner in the other half of the group
        if variant == "road_1":
            p = group * 2 + (k % 2)
            c1, c2 = a[p] * np.cos(t[p]), a[p] * np.sin(t[p])
        elif variant == "road_2":
            c1, c2 = a[i] * np.cos(t[i]), a[i] * np.sin(t[i])
        else:
            c1, c2 = a[group * 8 + k] * np.cos(t[group * 8 + k]), a[group * 8 + 4 + k] * np.sin(t[group * 8 + 4 + k])
        want[:, i] = c1 * y[:, i] + c2 * (-y[:, j] if first else y[:, j])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    with tp.no_grad():
        out = pm(inputs("MLP")).numpy()
        pm.merge_adapter()
        np.testing.assert_allclose(pm(inputs("MLP")).numpy(), out, rtol=1e-4, atol=1e-5)
        pm.unmerge_adapter()
        np.testing.assert_allclose(pm(inputs("MLP")).numpy(), out, rtol=1e-4, atol=1e-5)


def test_gradients_match_finite_differences():
    pm = get_peft_model(MLP(), RoadConfig(target_modules=["lin0"], variant="road_4", group_size=4, init_weights=False))
    layer = pm.base_model.model.lin0
    for d in (layer.road_theta, layer.road_alpha):
        d["default"] = tp.nn.Parameter(d["default"].data.astype(np.float64))
    y = tp.tensor(np.random.default_rng(0).standard_normal((3, 20)))
    assert gradcheck(lambda t, a: layer._rotate(y, "default"), [layer.road_theta["default"], layer.road_alpha["default"]])
