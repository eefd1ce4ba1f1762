"""DeLoRA: the update's formula, its norm bound, merge/unmerge, gradients (through the normalising norms)."""
import numpy as np

import tinypeft as tp
from custom_models import MLP, inputs
from tinypeft.peft import DeloraConfig, get_peft_model
from tinypeft.testing import gradcheck


def test_delta_formula_bound_and_merge():
    base = MLP().eval()
    with tp.no_grad():
        want = base(inputs("MLP")).numpy()
        pm = get_peft_model(base, DeloraConfig(target_modules=["lin0"], r=4)).eval()
        np.testing.assert_allclose(pm(inputs("MLP")).numpy(), want, rtol=1e-6)
    pm = get_peft_model(MLP().eval(), DeloraConfig(target_modules=["lin0"], r=4, delora_lambda=3,
                                                   init_weights=False)).eval()
    layer = pm.base_model.model.lin0
    A, B, W = layer.delora_A["default"].data, layer.delora_B["default"].data, layer.base_layer.weight.data
    an, bn = np.linalg.norm(A, axis=1), np.linalg.norm(B, axis=0)
    want = sum(np.outer(B[:, i], A[i]) * 3 / (4 * an[i] * bn[i]) for i in range(4)) * np.linalg.norm(W, axis=0)
    np.testing.assert_allclose(layer.get_delta_weight("default"), want, rtol=1e-5, atol=1e-6)
    # each normalised rank-one term has norm lambda / r: the update is bounded by lambda * max column norm of W
    assert np.linalg.norm(want, 2) <= 3 * np.linalg.norm(W, axis=0).max() + 1e-5
    with tp.no_grad():
        y = pm(inputs("MLP")).numpy()
        pm.merge_adapter()
        np.testing.assert_allclose(pm(inputs("MLP")).numpy(), y, rtol=1e-4, atol=1e-5)
        pm.unmerge_adapter()
        np.testing.assert_allclose(pm(inputs("MLP")).numpy(), y, rtol=1e-4, atol=1e-5)


def test_gradients_match_finite_differences():
    pm = get_peft_model(MLP(), DeloraConfig(target_modules=["lin0"], r=3, init_weights=False))
    layer = pm.base_model.model.lin0
    for d in (layer.delora_A, layer.delora_B, layer.delora_lambda):
        d["default"] = tp.nn.Parameter(d["default"].data.astype(np.float64))
    layer.delora_w_norm["default"] = tp.tensor(layer.delora_w_norm["default"].data.astype(np.float64))
    layer.base_layer.weight = tp.nn.Parameter(layer.base_layer.weight.data.astype(np.float64), requires_grad=False)
    layer.base_layer.bias = tp.nn.Parameter(layer.base_layer.bias.data.astype(np.float64), requires_grad=False)
    x = tp.tensor(np.random.default_rng(0).standard_normal((3, 10)))
    params = [layer.delora_A["default"], layer.delora_B["default"], layer.delora_lambda["default"]]
    assert gradcheck(lambda a, b, lam: layer(x), params)
