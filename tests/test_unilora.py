"""UniLoRA: one shared trained vector, balanced indices rebuilt from proj_seed, the one tensor saved."""
import numpy as np
import pytest

import tinypeft as tp
from custom_models import MLP, inputs, saved_keys_and_reloaded_output
from tinypeft.peft import UniLoraConfig, get_peft_model
from tinypeft.peft.tuners.unilora.model import generate_index


def _model(**kwargs):
    kwargs = {"target_modules": ["lin0", "lin1"], "theta_d_length": 101, **kwargs}
    return get_peft_model(MLP().eval(), UniLoraConfig(**kwargs)).eval()


def test_indices_use_every_entry_equally_often_and_depend_only_on_the_seed():
    idx = generate_index(1000, 101, proj_seed=7)
    counts = np.bincount(idx, minlength=101)
    assert counts.sum() == 1000 and counts.max() - counts.min() == 1  # 1000 = 9 * 101 + 91
    np.testing.assert_array_equal(idx, generate_index(1000, 101, proj_seed=7))
    assert not np.array_equal(idx, generate_index(1000, 101, proj_seed=8))


def test_unilora_trains_one_vector_whose_entries_build_every_factor():
    pm = _model()
    assert [n for n, p in pm.named_parameters() if p.requires_grad] == ["base_model.model.lin0.unilora_theta_d.default"]
    lin0, lin1 = pm.base_model.model.lin0, pm.base_model.model.lin1
    theta = pm.base_model.unilora_theta_d["default"]
    assert lin0.unilora_theta_d["default"] is theta and theta.shape == (101,)
    # lin0 reads 4*10 + 20*4 entries, lin1 4*20 + 2*4: 208 in all, each of the 101 entries 2 or 3 times
    used = np.concatenate([m.unilora_indices_A["default"].numpy().ravel() for m in (lin0, lin1)]
                          + [m.unilora_indices_B["default"].numpy().ravel() for m in (lin0, lin1)])
    assert used.size == 208 and set(np.bincount(used, minlength=101)) == {2, 3}
    A = theta.detach().numpy()[lin0.unilora_indices_A["default"].numpy()] * lin0.unilora_scales_A["default"].numpy()
    B = theta.detach().numpy()[lin0.unilora_indices_B["default"].numpy()] * lin0.unilora_scales_B["default"].numpy()
    x = inputs("MLP")
    with tp.no_grad():
        want = lin0.base_layer(x).numpy() + x.numpy() @ A.T @ B.T
        np.testing.assert_allclose(lin0(x).numpy(), want, rtol=1e-5, atol=1e-5)


def test_unilora_gradient_sums_over_every_place_an_entry_is_read():
    pm = _model(init_weights=False)
    lin0 = pm.base_model.model.lin0
    x = tp.tensor(np.random.default_rng(0).standard_normal((3, 10)).astype(np.float32))
    (lin0(x) * tp.tensor(np.ones((3, 20), np.float32))).sum().backward()
    got = pm.base_model.unilora_theta_d["default"].grad.numpy()
    theta = pm.base_model.unilora_theta_d["default"].detach().numpy().astype(np.float64)

    def f(t):
        A = t[lin0.unilora_indices_A["default"].numpy()] * lin0.unilora_scales_A["default"].numpy()
        B = t[lin0.unilora_indices_B["default"].numpy()] * lin0.unilora_scales_B["default"].numpy()
        return (x.numpy() @ A.T @ B.T).sum()

    eye = np.eye(101) * 1e-4
    want = np.array([(f(theta + e) - f(theta - e)) / 2e-4 for e in eye])
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)


def test_unilora_saves_only_theta_d_and_rebuilds_the_indices(tmp_path):
    pm = _model(init_weights=False)
    with tp.no_grad():
        y = pm(inputs("MLP")).numpy()
        pm.merge_adapter()
        np.testing.assert_allclose(pm(inputs("MLP")).numpy(), y, rtol=1e-5, atol=1e-5)
        pm.unmerge_adapter()
    keys, out = saved_keys_and_reloaded_output(pm, tmp_path)
    assert keys == ["base_model.unilora_theta_d"]
    np.testing.assert_allclose(out, y, rtol=1e-5, atol=1e-5)  # y: before the merge


def test_unilora_second_adapter_has_its_own_vector_and_can_be_deleted():
    pm = _model(init_weights=False)
    pm.add_adapter("other", UniLoraConfig(target_modules=["lin0"], theta_d_length=50, proj_seed=1,
                                          init_weights=False))
    with tp.no_grad():
        y0 = pm(inputs("MLP")).numpy()
        pm.set_adapter("other")
        assert not np.allclose(pm(inputs("MLP")).numpy(), y0)
    assert [n for n, p in pm.named_parameters() if p.requires_grad] == ["base_model.model.lin0.unilora_theta_d.other"]
    pm.delete_adapter("other")
    assert list(pm.base_model.unilora_theta_d.keys()) == ["default"]


def test_unilora_refuses_what_peft_or_tinypeft_refuses():
    with pytest.raises(NotImplementedError, match="save_indices"):
        UniLoraConfig(save_indices=True)
    with pytest.raises(ValueError, match="layers_to_transform"):
        UniLoraConfig(target_modules="lin0", layers_to_transform=[0])
    with pytest.raises(ValueError, match="theta_d_length"):
        UniLoraConfig(theta_d_length=0)
    with pytest.raises(ValueError, match="init_theta_d_bound"):
        UniLoraConfig(init_theta_d_bound=0)
