"""LN tuning: a trained copy of each target module; merge swaps it in."""
import numpy as np

import tinypeft as tp
from custom_models import MLP_LayerNorm, inputs
from tinypeft.peft import LNTuningConfig, get_peft_model


def test_ln_tuning_trains_a_copy_and_merge_swaps_it_in():
    base = MLP_LayerNorm().eval()
    with tp.no_grad():
        want = base(inputs("MLP")).numpy()
    pm = get_peft_model(base, LNTuningConfig(target_modules=["layernorm0"])).eval()
    trainable = sorted(n for n, p in pm.named_parameters() if p.requires_grad)
    assert trainable == ["base_model.model.layernorm0.ln_tuning_layers.default.bias",
                         "base_model.model.layernorm0.ln_tuning_layers.default.weight"]
    layer = pm.base_model.model.layernorm0
    layer.ln_tuning_layers["default"].weight.data[...] = 2.0
    with tp.no_grad():
        y = pm(inputs("MLP")).numpy()
        assert not np.allclose(y, want)
        with pm.disable_adapter():
            np.testing.assert_array_equal(pm(inputs("MLP")).numpy(), want)
        pm.merge_adapter()
        np.testing.assert_array_equal(pm(inputs("MLP")).numpy(), y)
        assert float(layer.base_layer.weight.data[0]) == 2.0
        pm.unmerge_adapter()
        assert float(layer.base_layer.weight.data[0]) == 1.0
        merged = pm.merge_and_unload()
        np.testing.assert_array_equal(merged(inputs("MLP")).numpy(), y)
