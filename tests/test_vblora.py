"""VB-LoRA: factors mixed from a shared vector bank by top-k softmax weights; the bank saved once."""
import numpy as np
import pytest

import tinypeft as tp
from custom_models import MLP, inputs, saved_keys_and_reloaded_output
from tinypeft.peft import VBLoRAConfig, get_peft_model
from tinypeft.peft.tuners.vblora.layer import low_rank_matrix
from tinypeft.testing import gradcheck


def _model(**kwargs):
    kwargs = {"target_modules": ["lin0", "lin1"], "vector_length": 2, "num_vectors": 6, "topk": 2, **kwargs}
    return get_peft_model(MLP().eval(), VBLoRAConfig(**kwargs)).eval()


def test_low_rank_matrix_mixes_the_topk_bank_vectors_by_softmax():
    rng = np.random.default_rng(0)
    z, bank = rng.standard_normal((3, 5)), rng.standard_normal((5, 4))
    got = low_rank_matrix(tp.tensor(z), tp.tensor(bank), 2).numpy()
    for i in range(3):
        top = np.argsort(z[i])[::-1][:2]
        w = np.exp(z[i, top]) / np.exp(z[i, top]).sum()
        np.testing.assert_allclose(got[i], w @ bank[top], rtol=1e-12)


def test_low_rank_matrix_gradients_by_finite_differences():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((2, 3, 7))  # well separated top-2: the choice does not flip under the probe
    bank = rng.standard_normal((7, 4))
    assert gradcheck(lambda z, b: low_rank_matrix(z, b, 3), (tp.tensor(z, requires_grad=True),
                                                            tp.tensor(bank, requires_grad=True)))


def test_vblora_trains_bank_and_logits_and_merges():
    pm = _model()
    assert sorted(n for n, p in pm.named_parameters() if p.requires_grad) == [
        "base_model.model.lin0.vblora_logits_A.default", "base_model.model.lin0.vblora_logits_B.default",
        "base_model.model.lin0.vblora_vector_bank.default",  # the shared bank, named where it is first reached
        "base_model.model.lin1.vblora_logits_A.default", "base_model.model.lin1.vblora_logits_B.default"]
    lin0 = pm.base_model.model.lin0
    assert lin0.vblora_logits_A["default"].shape == (4, 5, 6) and lin0.vblora_logits_B["default"].shape == (10, 4, 6)
    assert pm.base_model.vblora_vector_bank["default"] is lin0.vblora_vector_bank["default"]
    with tp.no_grad():
        y = pm(inputs("MLP")).numpy()
        pm.merge_adapter()
        np.testing.assert_allclose(pm(inputs("MLP")).numpy(), y, rtol=1e-5, atol=1e-5)
        pm.unmerge_adapter()
    assert pm.get_nb_savable_parameters() == (6 * 2 + 4 * 5 * 6 + 10 * 4 * 6 + 4 * 10 * 6 + 1 * 4 * 6, 0)


def test_vblora_saves_bank_once_and_reloads(tmp_path):
    pm = _model()
    with tp.no_grad():
        want = pm(inputs("MLP")).numpy()
    keys, out = saved_keys_and_reloaded_output(pm, tmp_path)
    assert keys == [
        f"base_model.model.{m}.vblora_logits_{p}" for m in ("lin0", "lin1") for p in "AB"] + [
        "base_model.vblora_vector_bank"]
    np.testing.assert_array_equal(out, want)


def test_vblora_refuses_what_peft_or_tinypeft_refuses():
    with pytest.raises(NotImplementedError, match="save_only_topk_weights"):
        VBLoRAConfig(save_only_topk_weights=True)
    with pytest.raises(ValueError, match="topk"):
        VBLoRAConfig(topk=0)
    with pytest.raises(ValueError, match="divisible by `vector_length`"):
        _model(vector_length=3)
