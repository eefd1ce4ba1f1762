"""merge_utils (TIES, DARE, magnitude pruning) on hand-worked examples, and add_weighted_adapter's combination types.

PEFT's numbers for the same inputs are checked in tests/test_weighted_adapter_parity.py (parity marker).
"""
import numpy as np
import pytest

import tinypeft as tp
from custom_models import MLP, ModelEmbConv1D
from tinypeft.peft import LoraConfig, get_peft_model
from tinypeft.peft.utils.merge_utils import (calculate_majority_sign_mask, dare_linear, disjoint_merge,
                                             magnitude_prune, prune, task_arithmetic, ties)

T1 = np.array([[3.0, -1.0], [0.5, 2.0]], np.float32)
T2 = np.array([[-1.0, -4.0], [1.5, -0.25]], np.float32)
W = np.array([1.0, 0.5], np.float32)


def test_magnitude_prune_keeps_the_largest_entries():
    np.testing.assert_array_equal(prune(T1, 0.5, "magnitude"), [[3.0, 0.0], [0.0, 2.0]])
    np.testing.assert_array_equal(prune(T2, 0.25, "magnitude"), [[0.0, -4.0], [0.0, 0.0]])
    np.testing.assert_array_equal(magnitude_prune([T1, T2], W, 0.5), [[3.0, -2.0], [0.5 * 1.5, 2.0]])
    with pytest.warns(UserWarning, match="no pruning"):
        np.testing.assert_array_equal(prune(T1, 1.0, "magnitude"), T1)
    with pytest.raises(ValueError, match=">= 0"):
        prune(T1, -0.1, "magnitude")
    with pytest.raises(ValueError, match="density must be given"):
        prune(T1, None, "magnitude")


def test_majority_sign_total_and_frequency_differ_where_they_should():
    stacked = np.stack([np.array([5.0, 1.0, 0.0]), np.array([-1.0, 1.0, -2.0]), np.array([-1.0, -3.0, 0.0])])
    # total: signs of the column sums (3, -1, -2) -> (+, -, -); frequency: most common sign (-, +, -)
    np.testing.assert_array_equal(calculate_majority_sign_mask(stacked, "total"),
                                  [[1, 0, 0], [0, 0, 1], [0, 1, 0]])
    np.testing.assert_array_equal(calculate_majority_sign_mask(stacked, "frequency"),
                                  [[0, 1, 0], [1, 1, 1], [1, 0, 0]])
    with pytest.raises(RuntimeError, match="Unimplemented"):
        calculate_majority_sign_mask(stacked, "median")


def test_ties_averages_the_agreeing_entries():
    # density 1 (no pruning): entry by entry, the elected sign of T1 + T2 and the mean of the weighted agreeing ones
    with pytest.warns(UserWarning):
        got = ties([T1, T2], W, 1.0)
    # [0,0]: sum 2 > 0, only 3 agrees -> 3; [0,1]: both negative -> (-1 + -2) / 2; [1,0]: both + -> (0.5 + 0.75) / 2;
    # [1,1]: sum 1.75 > 0, only 2 agrees -> 2
    np.testing.assert_allclose(got, [[3.0, -1.5], [0.625, 2.0]])
    np.testing.assert_array_equal(disjoint_merge(np.zeros((2, 3)), np.zeros((2, 3), bool)), np.zeros(3))


def test_dare_masks_are_seeded_and_unbiased():
    x = np.ones((200, 200), np.float32)
    tp.manual_seed(3)
    a = prune(x, 0.3, "random", rescale=True)
    tp.manual_seed(3)
    np.testing.assert_array_equal(prune(x, 0.3, "random", rescale=True), a)
    kept = a != 0
    assert abs(kept.mean() - 0.3) < 0.01  # 40,000 Bernoulli(0.3) draws: sd 0.0023
    np.testing.assert_allclose(a[kept], 1 / 0.3, rtol=1e-6)  # survivors rescaled by 1 / density
    assert abs(dare_linear([x, x], W, 0.3).mean() - 1.5) < 0.03  # E = sum_i w_i x
    tp.manual_seed(3)
    np.testing.assert_array_equal(prune(x, 0.3, "random"), kept)  # same draws; no rescale: survivors unchanged


def _pair(model, r_b=2, **kw):
    pm = get_peft_model(model.eval(), LoraConfig(r=2, init_lora_weights=False, **kw))
    pm.add_adapter("b", LoraConfig(r=r_b, lora_alpha=3, init_lora_weights=False, **kw))
    return pm


@pytest.mark.parametrize("model,targets", [(MLP, ["lin0"]), (ModelEmbConv1D, ["emb", "conv1d"])])
def test_svd_with_enough_rank_is_the_exact_weighted_sum(model, targets):
    pm = _pair(model(), r_b=3, target_modules=targets)
    pm.add_weighted_adapter(["default", "b"], [0.7, -0.4], "mix", combination_type="svd", svd_rank=5)
    for layer in pm.base_model.tuner_layers():
        exact = 0.7 * layer.get_delta_weight("default") - 0.4 * layer.get_delta_weight("b")
        np.testing.assert_allclose(layer.get_delta_weight("mix"), exact, rtol=1e-4, atol=1e-5)
        A, B = (layer.lora_A["mix"].weight, layer.lora_B["mix"].weight) if "mix" in layer.lora_A else (
            layer.lora_embedding_A["mix"], layer.lora_embedding_B["mix"])
        assert A.shape[0] == B.shape[1] == 5
    assert pm.peft_config["mix"].r == pm.peft_config["mix"].lora_alpha == 5


def test_svd_truncates_to_the_best_low_rank_update():
    pm = _pair(MLP(), target_modules=["lin0"])
    pm.add_weighted_adapter(["default", "b"], [1.0, 1.0], "mix", combination_type="svd", svd_rank=1)
    layer = pm.base_model.model.lin0
    exact = layer.get_delta_weight("default") + layer.get_delta_weight("b")
    U, S, Vh = np.linalg.svd(exact)
    np.testing.assert_allclose(layer.get_delta_weight("mix"), S[0] * np.outer(U[:, 0], Vh[0]), rtol=1e-4, atol=1e-5)


def test_factor_merges_apply_the_merge_to_each_factor():
    pm = _pair(MLP(), target_modules=["lin0"])
    layer = pm.base_model.model.lin0
    A = [layer.lora_A[a].weight.data for a in ("default", "b")]
    pm.add_weighted_adapter(["default", "b"], [2.0, 1.0], "mag", combination_type="magnitude_prune", density=0.5)
    s = [2.0 * layer.scaling["default"], 1.0 * layer.scaling["b"]]  # w_i * s_i, positive: sqrt on each factor
    np.testing.assert_allclose(layer.lora_A["mag"].weight.data, magnitude_prune(A, np.sqrt(s), 0.5), rtol=1e-6)
    np.testing.assert_allclose(layer.lora_A["mag"].weight.data, task_arithmetic(
        [prune(a, 0.5, "magnitude") for a in A], np.sqrt(s)), rtol=1e-6)
    assert np.count_nonzero(layer.lora_A["mag"].weight.data) <= 2 * A[0].size // 2


def test_bad_combination_requests_are_refused():
    pm = _pair(MLP(), r_b=4, target_modules=["lin0"])
    with pytest.raises(ValueError, match="same r value"):
        pm.add_weighted_adapter(["default", "b"], [0.5, 0.5], "t", combination_type="ties", density=0.5)
    with pytest.raises(ValueError, match="Invalid combination_type"):
        pm.add_weighted_adapter(["default", "b"], [0.5, 0.5], "t", combination_type="average")
    with pytest.raises(NotImplementedError, match="svd_driver='gesvdj'.*NumPy"):
        pm.add_weighted_adapter(["default", "b"], [0.5, 0.5], "t", combination_type="svd", svd_driver="gesvdj")
    with pytest.raises(ValueError, match="give density"):
        pm.add_weighted_adapter(["default", "b"], [0.5, 0.5], "t", combination_type="dare_linear_svd")
    with pytest.raises(RuntimeError, match="Unimplemented mask method"):
        pm.add_weighted_adapter(["default", "b"], [0.5, 0.5], "t", combination_type="svd", majority_sign_method="mean")
    assert "t" not in pm.peft_config
