"""OFT and BOFT: no-op init, orthogonal rotations, merge/unmerge, the Cayley and Neumann paths, errors."""
import numpy as np
import pytest

import tinypeft as tp
from custom_models import MLP, MLP2, ModelConv2D, ModelEmbConv1D, inputs
from tinypeft.peft import BOFTConfig, OFTConfig, get_peft_model
from tinypeft.peft.tuners.boft.layer import block_butterfly_perm
from tinypeft.peft.tuners.oft.layer import neumann_cayley, skew
from tinypeft.testing import gradcheck

CASES = [
    ("MLP", MLP, OFTConfig, dict(target_modules=["lin0"], r=2, oft_block_size=0, use_cayley_neumann=False)),
    ("MLP", MLP, OFTConfig, dict(target_modules=["lin0"], r=0, oft_block_size=2, block_share=True)),
    ("MLP", MLP, OFTConfig, dict(target_modules=["lin0"], r=2, oft_block_size=0, coft=True, eps=1e-2)),
    ("EmbConv1D", ModelEmbConv1D, OFTConfig, dict(target_modules=["emb"], r=1, oft_block_size=0)),
    ("Conv2d", ModelConv2D, OFTConfig, dict(target_modules=["conv2d"], r=5, oft_block_size=0)),
    ("MLP", MLP2, BOFTConfig, dict(target_modules=["lin1"], boft_block_size=2, boft_n_butterfly_factor=3)),
    ("Conv2d", ModelConv2D, BOFTConfig, dict(target_modules=["conv2d"], boft_block_size=45)),
]


@pytest.mark.parametrize("name, model, cls, cfg", CASES)
def test_init_is_a_no_op_and_merge_round_trips(name, model, cls, cfg):
    tp.manual_seed(0)
    base = model().eval()
    with tp.no_grad():
        want = base(inputs(name)).numpy()
        pm = get_peft_model(base, cls(**cfg)).eval()
        np.testing.assert_allclose(pm(inputs(name)).numpy(), want, rtol=1e-5, atol=1e-6)
        pm = get_peft_model(model().eval(), cls(**cfg, init_weights=False)).eval()
        y = pm(inputs(name)).numpy()
        layer = getattr(pm.base_model.model, cfg["target_modules"][0])
        W0 = layer.base_layer.weight.data.copy()
        pm.merge_adapter()
        assert not np.allclose(layer.base_layer.weight.data, W0, atol=1e-4)  # the adapter really changes W
        np.testing.assert_allclose(pm(inputs(name)).numpy(), y, rtol=1e-4, atol=1e-5)
        pm.unmerge_adapter()
        np.testing.assert_allclose(layer.base_layer.weight.data, W0, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(pm(inputs(name)).numpy(), y, rtol=1e-4, atol=1e-5)


def test_exact_cayley_is_orthogonal_and_neumann_approximates_it():
    rng = np.random.default_rng(0)
    vec = tp.tensor(rng.standard_normal((3, 6)) * 0.05)
    S = skew(vec, 4)
    np.testing.assert_array_equal(S.numpy(), -S.numpy().swapaxes(1, 2))
    R = tp.functional.cayley(S).numpy()
    np.testing.assert_allclose(R @ R.swapaxes(1, 2), np.broadcast_to(np.eye(4), R.shape), atol=1e-12)
    # PEFT's series I + 2S + 2S^2 + ... sums (I + S)(I - S)^{-1} = cayley(-S) = cayley(S)^T: the same rotation
    # family with the sign of S flipped
    np.testing.assert_allclose(neumann_cayley(S, 12).numpy(), R.swapaxes(1, 2), atol=1e-10)
    np.testing.assert_allclose(neumann_cayley(S, 1).numpy(), np.broadcast_to(np.eye(4), R.shape))


@pytest.mark.parametrize("neumann", [False, True])
def test_oft_gradient_matches_finite_differences(neumann):
    pm = get_peft_model(MLP(), OFTConfig(target_modules=["lin0"], r=0, oft_block_size=5, use_cayley_neumann=neumann))
    module = pm.base_model.model.lin0.oft_R["default"]
    module.weight = tp.nn.Parameter(np.random.default_rng(0).standard_normal((2, 10)) * 0.3)  # float64
    x = tp.tensor(np.random.default_rng(1).standard_normal((3, 10)))
    assert gradcheck(lambda w: module(x), [module.weight])


def test_boft_gradient_matches_finite_differences():
    pm = get_peft_model(MLP2(), BOFTConfig(target_modules=["lin1"], boft_block_size=4, boft_n_butterfly_factor=2))
    layer = pm.base_model.model.lin1
    layer.boft_R["default"] = tp.nn.Parameter(np.random.default_rng(0).standard_normal((2, 8, 4, 4)) * 0.3)
    assert gradcheck(lambda R: layer.butterfly("default"), [layer.boft_R["default"]])
    M = layer.butterfly("default").detach().numpy()
    np.testing.assert_allclose(M @ M.T, np.eye(32), atol=1e-10)  # a product of orthogonal factors


def test_butterfly_permutation_is_a_permutation_that_mixes():
    perm = block_butterfly_perm(16, 4, 1, 2)
    assert sorted(perm) == list(range(16)) and list(perm) != list(range(16))
    assert list(block_butterfly_perm(8, 4, 1, 0)) == list(range(8))


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="only specify either r"):
        OFTConfig(r=2, oft_block_size=2)
    with pytest.raises(ValueError, match="must be non-zero"):
        OFTConfig(r=0, oft_block_size=0)
    with pytest.raises(NotImplementedError, match="bias"):
        OFTConfig(bias="all")
    with pytest.raises(ValueError, match="only specify either boft_block_size"):
        BOFTConfig(boft_block_size=2, boft_block_num=2)
    with pytest.raises(ValueError, match="Invalid combination"):
        get_peft_model(MLP(), BOFTConfig(target_modules=["lin1"], boft_block_size=4, boft_n_butterfly_factor=3))
    with pytest.warns(UserWarning, match="Adjusted `oft_block_size`"):
        get_peft_model(MLP(), OFTConfig(target_modules=["lin0"], oft_block_size=3))
