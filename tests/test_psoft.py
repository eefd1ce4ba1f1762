"""PSOFT: frozen SVD factors, the rotation R (Cayley, Neumann series, free), magnitudes, merge, gradients."""
import numpy as np
import pytest

import tinypeft as tp
from adapter_checks import check_second_adapter
from custom_models import MLP, inputs
from tinypeft.peft import PsoftConfig, get_peft_model
from tinypeft.testing import gradcheck


def test_psoft_factors_are_the_top_singular_pairs_and_not_saved():
    pm = get_peft_model(MLP().eval(), PsoftConfig(target_modules=["lin0"], r=4, psoft_alpha=8)).eval()
    layer = pm.base_model.model.lin0
    A, B = layer._psoft_A_cache["default"].numpy(), layer._psoft_B_cache["default"].numpy()
    W = layer.base_layer.weight.numpy()
    S = np.linalg.svd(W, compute_uv=False)[:4]
    np.testing.assert_allclose(A @ A.T, np.eye(4), atol=1e-5)  # psoft_init: A's rows orthonormal
    np.testing.assert_allclose(np.linalg.norm(B, axis=0), S / 2, rtol=1e-5)  # B = U S / (alpha / r)
    np.testing.assert_allclose(W @ A.T @ A, 2 * B @ A, rtol=1e-4, atol=1e-5)  # B A = the rank-4 part of W / 2
    assert not any("_psoft_" in k for k in pm.state_dict())
    assert sorted(n for n, p in pm.named_parameters() if p.requires_grad) == [
        f"base_model.model.lin0.psoft_R.default.{k}" for k in ("vector_a", "vector_b", "weight")]
    with tp.no_grad():  # R = I at init: a no-op
        y = pm(inputs("MLP")).numpy()
        with pm.disable_adapter():
            np.testing.assert_allclose(y, pm(inputs("MLP")).numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kwargs", [{}, {"use_cayley_neumann": True, "num_cayley_neumann_terms": 5,
                                         "cayley_neumann_eps": 0.2},
                                    {"psoft_orth": False, "psoft_mag_a": False, "psoft_mag_b": False},
                                    {"ab_svd_init": "pissa_init"}])
def test_psoft_update_is_b_r_minus_i_a_and_merges(kwargs):
    pm = get_peft_model(MLP().eval(), PsoftConfig(target_modules=["lin0"], r=4, psoft_alpha=4, init_weights=False,
                                                  **kwargs)).eval()
    layer, x = pm.base_model.model.lin0, inputs("MLP")
    R_mod = layer.psoft_R["default"]
    if R_mod.vector_a is not None:
        R_mod.vector_a.data[:] = np.linspace(0.5, 1.5, 4)
    A, B = layer._psoft_A_cache["default"].numpy(), layer._psoft_B_cache["default"].numpy()
    with tp.no_grad():
        R = R_mod.get_matrix().numpy()
        if R_mod.orth and not R_mod.use_cayley_neumann:  # exact Cayley of a skew Q: orthogonal up to the scales
            C = R / np.linspace(0.5, 1.5, 4)[None, :]
            np.testing.assert_allclose(C.T @ C, np.eye(4), atol=1e-5)
        delta = B @ (R - np.eye(4)) @ A
        W, b = layer.base_layer.weight.numpy().copy(), layer.base_layer.bias.numpy()
        np.testing.assert_allclose(layer(x).numpy(), x.numpy() @ (W + delta).T + b, rtol=1e-4, atol=1e-3)
        y = pm(x).numpy()
        pm.merge_adapter()
        np.testing.assert_allclose(pm(x).numpy(), y, rtol=1e-4, atol=1e-5)
        pm.unmerge_adapter()
        np.testing.assert_allclose(layer.base_layer.weight.numpy(), W, rtol=1e-5, atol=1e-6)


def test_psoft_neumann_eps_bounds_the_generator():
    pm = get_peft_model(MLP(), PsoftConfig(target_modules=["lin0"], r=4, use_cayley_neumann=True,
                                           cayley_neumann_eps=0.1))
    R_mod = pm.base_model.model.lin0.psoft_R["default"]
    R_mod.weight.data[:] = np.arange(1, 7)
    with tp.no_grad():
        Q = R_mod._generator().numpy()
    np.testing.assert_allclose(np.linalg.norm(Q), 0.1, rtol=1e-5)


@pytest.mark.parametrize("neumann", [False, True])
def test_psoft_gradients_match_finite_differences(neumann):
    pm = get_peft_model(MLP(), PsoftConfig(target_modules=["lin0"], r=3, psoft_alpha=3, init_weights=False,
                                           use_cayley_neumann=neumann)).double()
    layer = pm.base_model.model.lin0
    for name in ("_psoft_A_cache", "_psoft_B_cache"):
        getattr(layer, name)["default"] = tp.tensor(getattr(layer, name)["default"].numpy().astype(np.float64))
    x = tp.tensor(np.random.default_rng(0).standard_normal((3, 10)))
    params = [p for _, p in layer.psoft_R["default"].named_parameters()]
    assert len(params) == 3
    assert gradcheck(lambda *ps: layer(x), params)


def test_psoft_refuses_what_it_cannot_do():
    with pytest.raises(NotImplementedError, match="lowrank"):
        PsoftConfig(psoft_svd="lowrank")
    with pytest.raises(ValueError, match="ab_svd_init"):
        PsoftConfig(ab_svd_init="olora")
    with pytest.raises(ValueError, match="must be less than or equal"):
        get_peft_model(MLP(), PsoftConfig(target_modules=["lin1"], r=4))
    with pytest.warns(UserWarning, match="num_cayley_neumann_terms"):
        PsoftConfig(num_cayley_neumann_terms=3)


def test_psoft_second_adapter(tmp_path):
    check_second_adapter(lambda: PsoftConfig(target_modules=["lin0"], r=4, init_weights=False), tmp_path)
