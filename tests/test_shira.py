"""SHiRA: trained values at r (in + out) masked positions; PEFT's random mask drawn bit for bit; indices in the file."""
import numpy as np
import pytest

import tinypeft as tp
from custom_models import MLP, ModelEmbConv1D, base_copy, inputs
from tinypeft.checkpoint_io import load_file
from tinypeft.peft import PeftModel, ShiraConfig, get_peft_model
from tinypeft.peft.tuners.shira import random_mask


def _model(**kwargs):
    kwargs = {"target_modules": ["lin0", "lin1"], "r": 1, **kwargs}
    return get_peft_model(MLP().eval(), ShiraConfig(**kwargs)).eval()


def test_random_mask_matches_torchs_randperm_draw():
    # sorted(torch.randperm(200, generator=torch.Generator())[:30]) and the same under .manual_seed(56), from torch
    fresh = [3, 10, 14, 28, 31, 35, 43, 50, 54, 57, 58, 67, 70, 92, 110, 123, 127, 132, 139, 145, 146, 147, 151, 163,
             172, 174, 177, 178, 193, 195]
    seeded = [10, 13, 14, 24, 26, 29, 38, 39, 42, 45, 49, 61, 80, 90, 92, 94, 103, 119, 139, 144, 147, 160, 161, 169,
              170, 177, 182, 186, 194, 196]
    lin = MLP().lin0  # [20, 10]: 200 entries, r (10 + 20) = 30 of them trained at r = 1
    assert np.flatnonzero(random_mask(lin, 1)).tolist() == fresh
    assert np.flatnonzero(random_mask(lin, 1, random_seed=56)).tolist() == seeded


def test_shira_is_a_no_op_at_init_and_its_gradient_lands_on_the_masked_entries():
    base = MLP().eval()
    with tp.no_grad():
        want = base(inputs("MLP")).numpy()
        pm = get_peft_model(base, ShiraConfig(r=1, target_modules=["lin0"])).eval()
        np.testing.assert_array_equal(pm(inputs("MLP")).numpy(), want)
    assert [n for n, p in pm.named_parameters() if p.requires_grad] == ["base_model.model.lin0.shira_weight.default"]
    lin0 = pm.base_model.model.lin0
    # dL/d shira_weight[k] = dL/dW[rows[k], cols[k]]: compare with the gradient of a plain copy of the layer
    x = tp.tensor(np.random.default_rng(0).standard_normal((4, 10)).astype(np.float32))
    cot = tp.tensor(np.random.default_rng(1).standard_normal((4, 20)).astype(np.float32))
    (lin0(x) * cot).sum().backward()
    W = tp.tensor(lin0.base_layer.weight.numpy(), requires_grad=True)
    (tp.functional.linear(x, W, lin0.base_layer.bias.detach()) * cot).sum().backward()
    rows, cols = lin0.shira_indices["default"]
    np.testing.assert_allclose(lin0.shira_weight["default"].grad.numpy(), W.grad.numpy()[rows, cols], rtol=1e-6)


def test_shira_merges_scales_and_saves_its_indices(tmp_path):
    pm = _model(init_weights=False, random_seed=56)
    x = inputs("MLP")
    with tp.no_grad():
        y = pm(x).numpy()
        pm.merge_adapter()
        np.testing.assert_allclose(pm(x).numpy(), y, rtol=1e-5, atol=1e-5)
        pm.unmerge_adapter()
        lin0 = pm.base_model.model.lin0
        delta = lin0.get_delta_weight("default")
        assert np.count_nonzero(delta) == 30
        lin0.set_scale("default", 0.5)
        np.testing.assert_allclose(lin0.get_delta_weight("default"), delta * 0.5)
        lin0.set_scale("default", 1.0)
    pm.save_pretrained(tmp_path)
    state = load_file(tmp_path / "adapter_model.safetensors")
    assert sorted(state) == ["base_model.model.lin0.shira_indices", "base_model.model.lin0.shira_weight",
                             "base_model.model.lin1.shira_indices", "base_model.model.lin1.shira_weight"]
    assert state["base_model.model.lin0.shira_indices"].dtype == np.int32
    assert state["base_model.model.lin0.shira_indices"].shape == (2, 30)
    # loaded with another seed: the indices come from the file, not from a new mask
    loaded = PeftModel.from_pretrained(base_copy(pm), tmp_path, config=ShiraConfig(
        target_modules=["lin0", "lin1"], r=1, random_seed=7, inference_mode=True)).eval()
    with tp.no_grad():
        np.testing.assert_allclose(loaded(x).numpy(), y, rtol=1e-5, atol=1e-5)


def test_shira_refuses_what_peft_refuses():
    with pytest.raises(ValueError, match="more shira params"):
        _model(r=10)
    with pytest.raises(TypeError, match="only the following modules"):
        get_peft_model(ModelEmbConv1D(), ShiraConfig(r=1, target_modules=["conv1d"]))
    with pytest.warns(UserWarning, match="mask_fn"):
        config = ShiraConfig(r=1, target_modules=["lin0"], mask_type="custom")
    with pytest.raises(ValueError, match="mask_fn"):
        get_peft_model(MLP(), config)
    config.mask_fn = random_mask  # a user's own mask function is called like PEFT's
    assert get_peft_model(MLP(), config).base_model.model.lin0.shira_indices["default"].shape == (2, 30)
