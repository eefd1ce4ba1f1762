"""GraLoRA: block (j, n) of the update is B_j[group n] A_n[group j] (built here by hand), merge, gradients."""
import numpy as np

import tinypeft as tp
from custom_models import MLP, inputs
from tinypeft.peft import GraloraConfig, get_peft_model
from tinypeft.testing import gradcheck


def test_block_structure_by_hand():
    pm = get_peft_model(MLP(), GraloraConfig(target_modules=["lin0"], r=4, gralora_k=2, alpha=4, init_weights=False))
    layer = pm.base_model.model.lin0
    A, B = layer.gralora_A["default"].data, layer.gralora_B["default"].data  # [2, 5, 4], [2, 4, 10]
    want = np.zeros((20, 10), np.float32)
    for j in range(2):          # output block
        for n in range(2):      # input block: rank-2 update through group j of A_n and group n of B_j
            want[j * 10:(j + 1) * 10, n * 5:(n + 1) * 5] = (A[n][:, 2 * j:2 * j + 2] @ B[j][2 * n:2 * n + 2]).T
    np.testing.assert_allclose(layer.get_delta_weight("default"), want * 1.0, rtol=1e-5, atol=1e-6)  # alpha / r = 1


def test_merge_and_gradients():
    pm = get_peft_model(MLP().eval(), GraloraConfig(target_modules=["lin0"], r=4, hybrid_r=2, init_weights=False)).eval()
    with tp.no_grad():
        y = pm(inputs("MLP")).numpy()
        pm.merge_adapter()
        np.testing.assert_allclose(pm(inputs("MLP")).numpy(), y, rtol=1e-4, atol=1e-5)
        pm.unmerge_adapter()
        np.testing.assert_allclose(pm(inputs("MLP")).numpy(), y, rtol=1e-4, atol=1e-5)
    layer = pm.base_model.model.lin0
    for d in (layer.gralora_A, layer.gralora_B):
        d["default"] = tp.nn.Parameter(d["default"].data.astype(np.float64))
    x = tp.tensor(np.random.default_rng(0).standard_normal((3, 10)))
    layer.hybrid_r["default"] = 0  # the plain-LoRA part is LoRA's (proven elsewhere)
    assert gradcheck(lambda a, b: layer._update(x, "default"), [layer.gralora_A["default"], layer.gralora_B["default"]])
