"""TinyLoRA: frozen SVD factors turned by R = sum_i v_i P_i; v shared by groups of layers; saved as PEFT does."""
import numpy as np
import pytest

import tinypeft as tp
from custom_models import MLP, ModelEmbConv1D, inputs, saved_keys_and_reloaded_output
from tinypeft.peft import TinyLoraConfig, get_peft_model


def _model(**kwargs):
    kwargs = {"target_modules": ["lin0", "lin1"], "r": 2, "u": 8, "init_weights": "uniform", **kwargs}
    return get_peft_model(MLP().eval(), TinyLoraConfig(**kwargs)).eval()


def test_tinylora_is_a_no_op_at_init_and_trains_one_vector_per_group():
    base = MLP().eval()
    with tp.no_grad():
        want = base(inputs("MLP")).numpy()
        pm = get_peft_model(base, TinyLoraConfig(target_modules=["lin0", "lin1"], u=8)).eval()
        np.testing.assert_array_equal(pm(inputs("MLP")).numpy(), want)
    # the tuner's ModuleDict of vectors is first reached through lin0, so both are named there (as in PEFT)
    assert sorted(n for n, p in pm.named_parameters() if p.requires_grad) == [
        "base_model.model.lin0.tinylora_v.default.0", "base_model.model.lin0.tinylora_v.default.1"]
    tied = _model(weight_tying=1.0)
    assert [n for n, p in tied.named_parameters() if p.requires_grad] == ["base_model.model.lin0.tinylora_v.default.0"]
    assert tied.base_model.model.lin1.tinylora_v_key["default"] == "0"


def test_tinylora_factors_are_the_top_r_svd_of_the_weight():
    pm = _model()
    lin0 = pm.base_model.model.lin0
    W = lin0.base_layer.weight.numpy()
    U, S, Vh = np.linalg.svd(W, full_matrices=False)
    BA = lin0.tinylora_B["default"].numpy() @ lin0.tinylora_A["default"].numpy()
    np.testing.assert_allclose(BA, (U[:, :2] * S[:2]) @ Vh[:2], rtol=1e-4, atol=1e-5)
    assert lin0.tinylora_P["default"].shape == (8, 2, 2)
    v = lin0.tinylora_v["default"]["0"].detach().numpy()
    R = np.einsum("i,ijk->jk", v, lin0.tinylora_P["default"].numpy())
    want = lin0.tinylora_B["default"].numpy() @ R @ lin0.tinylora_A["default"].numpy()
    np.testing.assert_allclose(lin0.get_delta_weight("default"), want, rtol=1e-5, atol=1e-7)


def test_tinylora_on_an_embedding_merges_to_its_forward():
    pm = get_peft_model(ModelEmbConv1D().eval(), TinyLoraConfig(target_modules=["emb"], r=2, u=4,
                                                                init_weights="uniform", init_v_bound=0.5)).eval()
    emb = pm.base_model.model.emb
    assert emb.tinylora_A["default"].shape == (2, 5) and emb.tinylora_B["default"].shape == (100, 2)
    with tp.no_grad():
        y = pm(inputs("EmbConv1D")).numpy()
        assert not np.allclose(y, emb.base_layer.weight.numpy()[:1, :2])
        pm.merge_adapter()
        np.testing.assert_allclose(pm(inputs("EmbConv1D")).numpy(), y, rtol=1e-5, atol=1e-5)


def test_tinylora_saves_factors_projections_and_group_vectors(tmp_path):
    pm = _model()
    with tp.no_grad():
        want = pm(inputs("MLP")).numpy()
    keys, out = saved_keys_and_reloaded_output(pm, tmp_path)
    assert keys == [
        f"base_model.model.{m}.tinylora_{p}" for m in ("lin0", "lin1") for p in "ABP"] + [
        "base_model.tinylora_v.0", "base_model.tinylora_v.1"]
    np.testing.assert_array_equal(out, want)


def test_tinylora_refuses_what_peft_or_tinypeft_refuses():
    with pytest.raises(NotImplementedError, match="save_projection=False"):
        TinyLoraConfig(save_projection=False)
    with pytest.raises(ValueError, match="`u`"):
        TinyLoraConfig(u=0)
    with pytest.raises(ValueError, match="weight_tying"):
        TinyLoraConfig(weight_tying=1.5)
    with pytest.raises(ValueError, match="r"):
        TinyLoraConfig(r=0)
