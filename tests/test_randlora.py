"""RandLoRA: shared bases sized for the largest target, the update's formula, merge/unmerge, gradients."""
import numpy as np
import pytest

import tinypeft as tp
from custom_models import MLP, inputs
from tinypeft.peft import RandLoraConfig, get_peft_model
from tinypeft.testing import gradcheck


@pytest.mark.parametrize("kw", [{}, {"sparse": True}, {"very_sparse": True}])
def test_bases_formula_and_merge(kw):
    pm = get_peft_model(MLP().eval(), RandLoraConfig(target_modules=["lin0", "lin1"], r=4, randlora_alpha=8,
                                                     init_weights=False, **kw)).eval()
    A, B = pm.base_model.randlora_A["default"].data, pm.base_model.randlora_B["default"].data
    assert A.shape == (4, 1, 20) and B.shape == (20, 5, 4)  # largest target (20, 20): 5 bases of rank 4
    assert pm.base_model.model.lin0.randlora_A is pm.base_model.randlora_A  # one object, shared
    if kw:
        assert set(np.unique(np.sign(A))) <= {-1.0, 0.0, 1.0}
    layer = pm.base_model.model.lin0  # in 10 < out 20: n = 3 bases
    lam, gam = layer.randlora_lambda["default"].data, layer.randlora_gamma["default"].data
    U = (lam[:, :, None] * A[:4, :3, :10] * gam[None]).reshape(12, 10)  # rows over (r, n)
    V = B[:20, :3, :4].reshape(20, 12)                                  # columns over (n, r)
    np.testing.assert_allclose(layer.get_delta_weight("default"), V @ U * 2, rtol=1e-5, atol=1e-6)
    with tp.no_grad():
        y = pm(inputs("MLP")).numpy()
        pm.merge_adapter()
        np.testing.assert_allclose(pm(inputs("MLP")).numpy(), y, rtol=1e-4, atol=1e-5)
        pm.unmerge_adapter()
        np.testing.assert_allclose(pm(inputs("MLP")).numpy(), y, rtol=1e-4, atol=1e-5)


def test_gradients_match_finite_differences():
    pm = get_peft_model(MLP(), RandLoraConfig(target_modules=["lin1"], r=4, init_weights=False))
    layer = pm.base_model.model.lin1  # out 2 < in 20: the other branch
    for d in (layer.randlora_lambda, layer.randlora_gamma):
        d["default"] = tp.nn.Parameter(d["default"].data.astype(np.float64))
    x = tp.tensor(np.random.default_rng(0).standard_normal((3, 20)))
    assert gradcheck(lambda a, b: layer._update(x, "default"),
                     [layer.randlora_lambda["default"], layer.randlora_gamma["default"]])


def test_refused():
    with pytest.raises(NotImplementedError, match="save_projection"):
        RandLoraConfig(save_projection=False)
