"""PVeRA: VeRA's shared projections with a sampled middle step; the mean at inference, the mean when merged."""
import numpy as np
import pytest

import tinypeft as tp
from custom_models import MLP, inputs, saved_keys_and_reloaded_output
from tinypeft.peft import PveraConfig, get_peft_model


def _model(**kwargs):
    return get_peft_model(MLP().eval(), PveraConfig(r=4, target_modules=["lin0", "lin1"], **kwargs)).eval()


def test_pvera_is_a_no_op_at_init_and_trains_only_its_vectors():
    base = MLP().eval()
    with tp.no_grad():
        want = base(inputs("MLP")).numpy()
        pm = get_peft_model(base, PveraConfig(r=4, target_modules=["lin0", "lin1"])).eval()
        np.testing.assert_array_equal(pm(inputs("MLP")).numpy(), want)
    assert sorted(n for n, p in pm.named_parameters() if p.requires_grad) == [
        f"base_model.model.{m}.pvera_lambda_{v}.default" for m in ("lin0", "lin1") for v in ("b", "d")]
    assert pm.base_model.pvera_A["default"].shape == (8, 20)  # 2r rows: a mean and a log-variance half
    assert pm.base_model.pvera_B["default"].shape == (20, 4)
    assert pm.base_model.model.lin0.pvera_lambda_d["default"].shape == (8,)


def test_pvera_inference_uses_the_mean_which_merging_reproduces():
    pm = _model(init_weights=False)
    x = inputs("MLP")
    with tp.no_grad():
        y = pm(x).numpy()
        lin0 = pm.base_model.model.lin0
        A, B = lin0.pvera_A["default"].numpy(), lin0.pvera_B["default"].numpy()
        b, d = lin0.pvera_lambda_b["default"].numpy(), lin0.pvera_lambda_d["default"].numpy()
        h = (x.numpy() @ A[:, :10].T) * d                                     # [9, 8]
        want = lin0.base_layer(x).numpy() + b * (h[:, :4] @ B[:20].T)          # mu only
        np.testing.assert_allclose(lin0(x).numpy(), want, rtol=1e-5, atol=1e-5)
        pm.merge_adapter()
        np.testing.assert_allclose(pm(x).numpy(), y, rtol=1e-5, atol=1e-5)
        pm.unmerge_adapter()
        np.testing.assert_allclose(pm(x).numpy(), y, rtol=1e-5, atol=1e-5)


def test_pvera_samples_in_training_and_generator_seed_repeats_the_samples():
    x = tp.tensor(inputs("MLP").numpy() / 100)  # small inputs: exp(logvar / 2) stays finite
    outs = []
    for _ in range(2):
        tp.manual_seed(0)  # the same lambda_d both times; the samples come from generator_seed's own stream
        pm = _model(init_weights=False, generator_seed=3)
        tp.manual_seed(1)
        lin0 = pm.base_model.model.lin0.train()
        with tp.no_grad():
            outs.append((lin0(x).numpy(), lin0(x).numpy()))
            eval_out = lin0.eval()(x).numpy()
    (a1, a2), (b1, b2) = outs
    assert not np.allclose(a1, a2)          # a new draw each call
    assert not np.allclose(a1, eval_out)    # differs from the mean
    np.testing.assert_array_equal(a1, b1)   # the same seed, the same draws
    np.testing.assert_array_equal(a2, b2)
    pm = _model(init_weights=False, sample_at_inference=True)
    with tp.no_grad():
        assert not np.allclose(pm(x).numpy(), pm(x).numpy())


def test_pvera_gradient_reaches_both_halves_when_sampling():
    pm = _model(init_weights=False).train()
    pm.base_model.model.drop.eval()
    (pm(tp.tensor(inputs("MLP").numpy() / 100)) * tp.tensor(np.ones((9, 2), np.float32))).sum().backward()
    g = pm.base_model.model.lin0.pvera_lambda_d["default"].grad.numpy()
    assert np.all(g[:4] != 0) and np.all(g[4:] != 0)


def test_pvera_saves_projections_once_and_reloads(tmp_path):
    pm = _model(init_weights=False)
    with tp.no_grad():
        want = pm(inputs("MLP")).numpy()
    keys, out = saved_keys_and_reloaded_output(pm, tmp_path)
    assert keys == [
        f"base_model.model.{m}.pvera_lambda_{v}" for m in ("lin0", "lin1") for v in ("b", "d")] + [
        "base_model.pvera_A", "base_model.pvera_B"]
    np.testing.assert_array_equal(out, want)


def test_pvera_refuses_what_peft_or_tinypeft_refuses():
    with pytest.raises(NotImplementedError, match="save_projection=False"):
        PveraConfig(save_projection=False)
    with pytest.raises(ValueError, match="layers_to_transform"):
        PveraConfig(layers_pattern="layers")
    pm = _model()
    with pytest.raises(ValueError, match="PRNG"):
        pm.add_adapter("other", PveraConfig(r=4, target_modules=["lin0"], projection_prng_key=1))
