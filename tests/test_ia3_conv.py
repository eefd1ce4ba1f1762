"""(IA)^3 on Conv1d/Conv2d: channel vectors, merge into the kernel (grouped convs included)."""
import numpy as np
import pytest

import tinypeft as tp
from custom_models import ModelConv1D, ModelConv1DGroups, ModelConv2D, inputs
from tinypeft.peft import IA3Config, get_peft_model


@pytest.mark.parametrize("name, model, target", [("Conv2d", ModelConv2D, "conv2d"), ("Conv1d", ModelConv1D, "conv1d"),
                                                 ("Conv1dGroups", ModelConv1DGroups, "conv1d")])
@pytest.mark.parametrize("ff", [False, True])
def test_ia3_conv_merges_into_the_kernel(name, model, target, ff):
    base = model().eval()
    with tp.no_grad():
        want = base(inputs(name)).numpy()
        cfg = dict(target_modules=[target], feedforward_modules=[target] if ff else [])
        pm = get_peft_model(base, IA3Config(**cfg)).eval()
        np.testing.assert_array_equal(pm(inputs(name)).numpy(), want)
        pm = get_peft_model(model().eval(), IA3Config(**cfg, init_ia3_weights=False)).eval()
        layer = getattr(pm.base_model.model, target)
        C = layer.base_layer.in_channels if ff else layer.base_layer.out_channels
        assert layer.ia3_l["default"].shape == (1, C) + (1,) * (layer.base_layer.weight.ndim - 2)
        y = pm(inputs(name)).numpy()
        pm.merge_adapter()
        np.testing.assert_allclose(pm(inputs(name)).numpy(), y, rtol=1e-5, atol=1e-5)
