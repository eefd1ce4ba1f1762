"""GLoRA: the effective weight and bias of each path kind, merge/unmerge from W0, gradients."""
import numpy as np
import pytest

import tinypeft as tp
from adapter_checks import check_second_adapter
from custom_models import MLP, inputs
from tinypeft.peft import GloraConfig, get_peft_model
from tinypeft.testing import gradcheck


@pytest.mark.parametrize("ab, c, de", [("lora", "lora", "constant"), ("vector", "vector", "vector"),
                                       ("constant", "none", "none"), ("none", "lora", "vector")])
def test_glora_output_is_the_effective_linear_and_merges(ab, c, de):
    cfg = dict(target_modules=["lin0"], r=3, config_A_B=ab, config_C=c, config_D_E=de)
    base = MLP().eval()
    with tp.no_grad():
        want = base(inputs("MLP")).numpy()
        pm = get_peft_model(base, GloraConfig(**cfg)).eval()
        np.testing.assert_allclose(pm(inputs("MLP")).numpy(), want, rtol=1e-6)
    pm = get_peft_model(MLP().eval(), GloraConfig(**cfg, init_weights=False)).eval()
    layer, x = pm.base_model.model.lin0, inputs("MLP")
    W, b = layer.base_layer.weight.numpy().copy(), layer.base_layer.bias.numpy().copy()
    with tp.no_grad():
        A, B, C, D, E = (getattr(layer, f"glora_{k}")["default"]().numpy() for k in "ABCDE")
        w_eff, b_eff = W + W * A + B, b + b * D + E + (W @ C).reshape(-1)
        np.testing.assert_allclose(layer(x).numpy(), x.numpy() @ w_eff.T + b_eff, rtol=1e-5, atol=1e-4)
        y = pm(x).numpy()
        pm.merge_adapter()
        np.testing.assert_allclose(layer.base_layer.weight.numpy(), w_eff, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(pm(x).numpy(), y, rtol=1e-5, atol=1e-5)
        pm.unmerge_adapter()
        np.testing.assert_allclose(layer.base_layer.weight.numpy(), W, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(layer.base_layer.bias.numpy(), b, rtol=1e-5, atol=1e-6)


def test_glora_two_adapters_merge_against_w0():
    pm = get_peft_model(MLP().eval(), GloraConfig(target_modules=["lin0"], r=2, init_weights=False)).eval()
    pm.add_adapter("other", GloraConfig(target_modules=["lin0"], r=2, init_weights=False))
    layer = pm.base_model.model.lin0
    W = layer.base_layer.weight.numpy().copy()
    with tp.no_grad():
        As = [layer.glora_A[a]().numpy() for a in ("default", "other")]
        Bs = [layer.glora_B[a]().numpy() for a in ("default", "other")]
        layer.merge(adapter_names=["default"])
        layer.merge(adapter_names=["other"])  # undoes the first merge, then merges both from W0
    np.testing.assert_allclose(layer.base_layer.weight.numpy(), W + sum(W * a + b for a, b in zip(As, Bs)),
                               rtol=1e-5, atol=1e-6)
    assert layer.merged_adapters == ["default", "other"]
    layer.unmerge()
    np.testing.assert_allclose(layer.base_layer.weight.numpy(), W, rtol=1e-5, atol=1e-5)


def test_glora_gradients_match_finite_differences():
    pm = get_peft_model(MLP(), GloraConfig(target_modules=["lin0"], r=2, init_weights=False)).double()
    layer = pm.base_model.model.lin0
    x = tp.tensor(np.random.default_rng(0).standard_normal((3, 10)))
    params = [p for _, p in layer.named_parameters() if p.requires_grad]
    assert len(params) == 8  # A, B, C: Xd and Xu; D, E: one scalar each
    assert gradcheck(lambda *ps: layer(x), params)


def test_glora_refuses_bad_configs():
    with pytest.raises(ValueError, match="config_C"):
        GloraConfig(config_C="constant")
    with pytest.raises(NotImplementedError, match="bias"):
        GloraConfig(bias="glora_only")


def test_glora_second_adapter(tmp_path):
    check_second_adapter(lambda: GloraConfig(target_modules=["lin0"], init_weights=False), tmp_path)
