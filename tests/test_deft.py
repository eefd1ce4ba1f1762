"""DEFT: W' = (I - P_proj) W + s Q_P R for both projectors, identity init, PaRa, exact unmerge, gradients."""
import numpy as np
import pytest

import tinypeft as tp
from adapter_checks import check_second_adapter
from custom_models import MLP, inputs
from tinypeft.peft import DeftConfig, get_peft_model
from tinypeft.testing import gradcheck


def _projector(P, method):
    if method == "qr":
        Q = np.linalg.qr(P)[0]
        return Q, Q
    return P, np.maximum(P, 0)


@pytest.mark.parametrize("method, para, alpha", [("relu", False, None), ("qr", False, 16), ("relu", True, None),
                                                  ("qr", True, None)])
def test_deft_output_is_the_projected_weight_and_unmerges_exactly(method, para, alpha):
    cfg = dict(target_modules=["lin0"], r=4, decomposition_method=method, para=para, alpha=alpha)
    if not para:  # identity init: the adapter starts as a no-op
        base = MLP().eval()
        with tp.no_grad():
            want = base(inputs("MLP")).numpy()
            pm = get_peft_model(base, DeftConfig(**cfg)).eval()
            np.testing.assert_allclose(pm(inputs("MLP")).numpy(), want, rtol=1e-5, atol=1e-6)
    pm = get_peft_model(MLP().eval(), DeftConfig(**cfg, init_weights=False)).eval()
    layer, x = pm.base_model.model.lin0, inputs("MLP")
    W, b = layer.base_layer.weight.numpy().copy(), layer.base_layer.bias.numpy()
    Q, right = _projector(layer.deft_P["default"].detach().numpy(), method)
    w_eff = W - Q @ right.T @ W
    if not para:
        w_eff = w_eff + (alpha / 4 if alpha else 1.0) * Q @ layer.deft_R["default"].detach().numpy()
    with tp.no_grad():
        np.testing.assert_allclose(layer(x).numpy(), x.numpy() @ w_eff.T + b, rtol=1e-4, atol=1e-4)
        y = pm(x).numpy()
        pm.merge_adapter()
        np.testing.assert_allclose(layer.base_layer.weight.numpy(), w_eff, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(pm(x).numpy(), y, rtol=1e-4, atol=1e-5)
        pm.unmerge_adapter()
    np.testing.assert_allclose(layer.base_layer.weight.numpy(), W, rtol=1e-6, atol=1e-6)
    assert len(layer._cached_merge_factor) == 0 and "_cached_merge_factor" not in str(list(pm.state_dict()))


@pytest.mark.parametrize("method", ["relu", "qr"])
def test_deft_gradients_match_finite_differences(method):
    pm = get_peft_model(MLP(), DeftConfig(target_modules=["lin0"], r=3, decomposition_method=method,
                                          init_weights=False)).double()
    layer = pm.base_model.model.lin0
    x = tp.tensor(np.random.default_rng(0).standard_normal((3, 10)))
    params = [layer.deft_P["default"], layer.deft_R["default"]]
    assert gradcheck(lambda *ps: layer(x), params)


def test_deft_caps_r_and_refuses_bad_configs():
    pm = get_peft_model(MLP(), DeftConfig(target_modules=["lin1"], r=8))
    assert pm.base_model.model.lin1.deft_P["default"].shape == (2, 2)  # r <= out_features
    with pytest.raises(ValueError, match="decomposition_method"):
        DeftConfig(decomposition_method="svd")
    with pytest.raises(ValueError, match="layers_to_transform"):
        DeftConfig(target_modules=".*lin0", layers_to_transform=[0])


def test_deft_second_adapter(tmp_path):
    check_second_adapter(lambda: DeftConfig(target_modules=["lin0"], init_weights=False), tmp_path)
