"""VeRA: shared frozen projections, two trained vectors per layer, merge, and the saved keys."""
import numpy as np
import pytest

import tinypeft as tp
from custom_models import MLP, inputs, saved_keys_and_reloaded_output
from tinypeft.peft import VeraConfig, get_peft_model


def test_vera_is_a_no_op_at_init_trains_only_lambdas_and_merges():
    base = MLP().eval()
    with tp.no_grad():
        want = base(inputs("MLP")).numpy()
        pm = get_peft_model(base, VeraConfig(r=4, target_modules=["lin0", "lin1"])).eval()
        np.testing.assert_array_equal(pm(inputs("MLP")).numpy(), want)
    assert sorted(n for n, p in pm.named_parameters() if p.requires_grad) == [
        f"base_model.model.{m}.vera_lambda_{v}.default" for m in ("lin0", "lin1") for v in ("b", "d")]
    A = pm.base_model.vera_A["default"]
    assert A.shape == (4, 20) and pm.base_model.model.lin0.vera_A["default"] is A  # one shared tensor
    pm = get_peft_model(MLP().eval(), VeraConfig(r=4, target_modules=["lin0", "lin1"], init_weights=False)).eval()
    with tp.no_grad():
        y = pm(inputs("MLP")).numpy()
        pm.merge_adapter()
        np.testing.assert_allclose(pm(inputs("MLP")).numpy(), y, rtol=1e-5, atol=1e-5)


def test_vera_saves_projections_once_and_reloads(tmp_path):
    pm = get_peft_model(MLP().eval(), VeraConfig(r=4, target_modules=["lin0"], init_weights=False)).eval()
    with tp.no_grad():
        want = pm(inputs("MLP")).numpy()
    keys, out = saved_keys_and_reloaded_output(pm, tmp_path)
    assert keys == [
        "base_model.model.lin0.vera_lambda_b", "base_model.model.lin0.vera_lambda_d",
        "base_model.vera_A", "base_model.vera_B"]
    np.testing.assert_array_equal(out, want)


def test_vera_refuses_what_it_cannot_reproduce():
    with pytest.raises(NotImplementedError, match="save_projection=False"):
        VeraConfig(save_projection=False)
