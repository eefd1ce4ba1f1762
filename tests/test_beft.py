"""BEFT: a trained bias per target Linear; no-op at init, merge into the base bias, the saved key."""
import numpy as np
import pytest

import tinypeft as tp
from adapter_checks import check_second_adapter
from custom_models import MLP, inputs
from tinypeft.checkpoint_io import read_header
from tinypeft.peft import BeftConfig, PeftModel, get_peft_model


def test_beft_adds_its_bias_and_merges_into_the_base_bias(tmp_path):
    base = MLP().eval()
    with tp.no_grad():
        want = base(inputs("MLP")).numpy()
        pm = get_peft_model(base, BeftConfig(target_modules=["lin0", "lin1"])).eval()
        np.testing.assert_array_equal(pm(inputs("MLP")).numpy(), want)
    pm = get_peft_model(MLP().eval(), BeftConfig(target_modules=["lin0"], init_weights=False)).eval()
    layer = pm.base_model.model.lin0
    assert [n for n, p in pm.named_parameters() if p.requires_grad] == ["base_model.model.lin0.beft_bias.default"]
    x = inputs("MLP")
    with tp.no_grad():
        np.testing.assert_allclose(layer(x).numpy(), layer.base_layer(x).numpy() + layer.beft_bias["default"].numpy(),
                                   rtol=1e-6)
        y, b0 = pm(x).numpy(), layer.base_layer.bias.numpy().copy()
        pm.merge_adapter()
        np.testing.assert_allclose(layer.base_layer.bias.numpy(), b0 + layer.beft_bias["default"].numpy()[0])
        np.testing.assert_allclose(pm(x).numpy(), y, rtol=1e-5, atol=1e-6)
        pm.unmerge_adapter()
        np.testing.assert_allclose(layer.base_layer.bias.numpy(), b0, rtol=1e-6, atol=1e-7)
    pm.save_pretrained(tmp_path)
    header, _ = read_header(tmp_path / "adapter_model.safetensors")
    assert sorted(k for k in header if k != "__metadata__") == ["base_model.model.lin0.beft_bias"]
    fresh = MLP().eval()
    fresh.load_state_dict({k.replace("base_model.model.", "").replace(".base_layer", ""): v
                           for k, v in pm.state_dict().items() if "beft" not in k})
    with tp.no_grad():
        np.testing.assert_allclose(PeftModel.from_pretrained(fresh, tmp_path).eval()(x).numpy(), y, rtol=1e-6)


def test_beft_without_a_base_bias_cannot_merge():
    with pytest.warns(UserWarning, match="no bias"):
        pm = get_peft_model(MLP(bias=False).eval(), BeftConfig(target_modules=["lin0"], init_weights=False))
    with pytest.raises(ValueError, match="no bias"):
        pm.merge_adapter()


def test_beft_second_adapter(tmp_path):
    check_second_adapter(lambda: BeftConfig(target_modules=["lin0"], init_weights=False), tmp_path)
