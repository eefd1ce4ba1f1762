"""LoKr: factorization, the Kronecker product and its gradients, no-op init, merge."""
import numpy as np
import pytest

import tinypeft as tp
from custom_models import MLP, ModelConv1D, ModelConv2D, inputs
from tinypeft.peft import LoKrConfig, get_peft_model
from tinypeft.peft.tuners.lokr.layer import factorization, kron
from tinypeft.testing import gradcheck


def leaf(*shape, seed=0):
    return tp.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


@pytest.mark.parametrize("n, f, want", [(256, -1, (16, 16)), (128, -1, (8, 16)), (127, -1, (1, 127)),
                                        (128, 4, (4, 32)), (20, -1, (4, 5)), (10, -1, (2, 5)), (2, -1, (1, 2))])
def test_factorization_as_documented_by_peft(n, f, want):
    assert factorization(n, f) == want


@pytest.mark.parametrize("sa, sb", [((2, 3), (4, 5)), ((2, 3, 1, 1), (2, 2, 3, 3)), ((2, 3), (4, 1, 3))])
def test_kron_is_numpy_kron_and_its_gradient_is_right(sa, sb):
    a, b = leaf(*sa, seed=1), leaf(*sb, seed=2)
    np.testing.assert_allclose(kron(a, b).data, np.kron(a.data, b.data), rtol=1e-12)
    assert gradcheck(kron, [a, b])


@pytest.mark.parametrize("name, model, cfg", [
    ("MLP", MLP, dict(target_modules=["lin0", "lin1"])),
    ("MLP", MLP, dict(target_modules=["lin0"], decompose_both=True, r=1)),
    ("Conv1d", ModelConv1D, dict(target_modules=["conv1d"])),
    ("Conv2d", ModelConv2D, dict(target_modules=["conv2d"], use_effective_conv2d=True, r=2)),
])
def test_lokr_is_a_no_op_at_init_and_merges(name, model, cfg):
    base = model().eval()
    with tp.no_grad():
        want = base(inputs(name)).numpy()
        pm = get_peft_model(base, LoKrConfig(**cfg)).eval()
        np.testing.assert_array_equal(pm(inputs(name)).numpy(), want)
        pm = get_peft_model(model().eval(), LoKrConfig(**cfg, init_weights=False)).eval()
        y = pm(inputs(name)).numpy()
        pm.merge_adapter()
        np.testing.assert_allclose(pm(inputs(name)).numpy(), y, rtol=1e-4, atol=1e-4)
        pm.unmerge_adapter()
        np.testing.assert_allclose(pm(inputs(name)).numpy(), y, rtol=1e-4, atol=1e-4)


def test_lokr_trains_only_its_factors():
    pm = get_peft_model(MLP(), LoKrConfig(target_modules=["lin0"], init_weights=False))
    pm(inputs("MLP")).sum().backward()
    trained = {n for n, p in pm.named_parameters() if p.grad is not None}
    assert trained == {"base_model.model.lin0.lokr_w1.default", "base_model.model.lin0.lokr_w2.default"}
