"""PEANuT: the weight-to-update network (depth, residuals, activation), merge from W0, file keys, gradients."""
from math import erf

import numpy as np
import pytest

import tinypeft as tp
from adapter_checks import check_second_adapter
from custom_models import MLP, inputs
from tinypeft.checkpoint_io import read_header
from tinypeft.peft import PeanutConfig, get_peft_model
from tinypeft.testing import gradcheck

_gelu = np.vectorize(lambda v: 0.5 * v * (1 + erf(v / np.sqrt(2))))


def test_peanut_delta_is_the_network_of_the_weight_and_merges(tmp_path):
    base = MLP().eval()
    with tp.no_grad():
        want = base(inputs("MLP")).numpy()
        pm = get_peft_model(base, PeanutConfig(target_modules=["lin0"], r=3, depth=2)).eval()
        np.testing.assert_array_equal(pm(inputs("MLP")).numpy(), want)
    pm = get_peft_model(MLP().eval(), PeanutConfig(target_modules=["lin0"], r=3, depth=2, act_fn="gelu", scaling=0.5,
                                                   init_weights=False)).eval()
    layer, x = pm.base_model.model.lin0, inputs("MLP")
    W = layer.base_layer.weight.numpy().copy()
    w = lambda m: m.weight.detach().numpy()  # noqa: E731
    enc, dec = layer.peanut_encoders["default"], layer.peanut_decoders["default"]
    h0 = _gelu(W.T @ w(layer.peanut_A["default"]).T)
    h1 = _gelu(h0 @ w(enc[0]).T)
    h = _gelu(h1 @ w(enc[1]).T)
    h = _gelu(h @ w(dec[0]).T) + h1
    h = _gelu(h @ w(dec[1]).T) + h0
    delta = 0.5 * (h @ w(layer.peanut_B["default"]).T).T
    with tp.no_grad():
        np.testing.assert_allclose(layer(x).numpy() - layer.base_layer(x).numpy(), x.numpy() @ delta.T, rtol=1e-4,
                                   atol=1e-4)
        y = pm(x).numpy()
        pm.merge_adapter()
        np.testing.assert_allclose(layer.base_layer.weight.numpy(), W + delta, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(pm(x).numpy(), y, rtol=1e-4, atol=1e-5)
        pm.unmerge_adapter()
    np.testing.assert_array_equal(layer.base_layer.weight.numpy(), W)
    pm.save_pretrained(tmp_path)
    header, _ = read_header(tmp_path / "adapter_model.safetensors")
    assert "base_model.model.lin0.peanut_encoders.1.weight" in header  # the adapter name leaves a ModuleList key


def test_peanut_gradients_match_finite_differences():
    pm = get_peft_model(MLP(), PeanutConfig(target_modules=["lin0"], r=2, depth=1, act_fn="silu",
                                            init_weights=False)).double()
    layer = pm.base_model.model.lin0
    x = tp.tensor(np.random.default_rng(0).standard_normal((3, 10)))
    params = [p for _, p in layer.named_parameters() if p.requires_grad]
    assert len(params) == 4
    assert gradcheck(lambda *ps: layer(x), params)


def test_peanut_second_adapter(tmp_path):
    check_second_adapter(lambda: PeanutConfig(target_modules=["lin0"], r=2, depth=1, init_weights=False), tmp_path)


def test_peanut_refuses_bad_configs():
    with pytest.raises(ValueError, match="act_fn"):
        PeanutConfig(act_fn="nope")
    with pytest.raises(NotImplementedError, match="mish"):
        PeanutConfig(act_fn="mish")
    with pytest.raises(ValueError, match="depth"):
        PeanutConfig(depth=-1)
