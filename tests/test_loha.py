"""LoHa: the Hadamard-product update, its gradients by finite differences, no-op init, merge and the file keys."""
import numpy as np
import pytest

import tinypeft as tp
from custom_models import MLP, ModelConv1DBigger, ModelConv2D, inputs
from tinypeft.peft import LoHaConfig, get_peft_model
from tinypeft.peft.tuners.loha.layer import make_weight, rebuild_cp
from tinypeft.testing import gradcheck


def leaf(*shape, seed=0):
    return tp.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def test_loha_delta_gradients_match_finite_differences():
    w = [leaf(4, 3, seed=1), leaf(3, 5, seed=2), leaf(4, 3, seed=3), leaf(3, 5, seed=4)]
    assert gradcheck(lambda a, b, c, d: make_weight(a, b, c, d, 0.7), w)


def test_loha_tucker_delta_gradients_match_finite_differences():
    """The effective-conv form, where PEFT 0.21.2's hand-written backward is wrong for hada_w*_a."""
    t1, wa, wb = leaf(3, 3, 2, 2, seed=1), leaf(3, 4, seed=2), leaf(3, 5, seed=3)
    t2, wa2, wb2 = leaf(3, 3, 2, 2, seed=4), leaf(3, 4, seed=5), leaf(3, 5, seed=6)
    assert gradcheck(lambda *a: rebuild_cp(a[0], a[1], a[2]) * rebuild_cp(a[3], a[4], a[5]), [t1, wa, wb, t2, wa2, wb2])
    ref = np.einsum("ijkl,jr,ip->prkl", t1.data, wb.data, wa.data)
    np.testing.assert_allclose(rebuild_cp(t1, wa, wb).data, ref, rtol=1e-12)


@pytest.mark.parametrize("name, model, cfg", [
    ("MLP", MLP, dict(target_modules=["lin0", "lin1"])),
    ("Conv2d", ModelConv2D, dict(target_modules=["conv2d"])),
    ("Conv2d", ModelConv2D, dict(target_modules=["conv2d"], use_effective_conv2d=True)),
    ("Conv1dBigger", ModelConv1DBigger, dict(target_modules=["conv1d"], r=2, use_effective_conv2d=True)),
])
def test_loha_is_a_no_op_at_init_and_merges(name, model, cfg):
    base = model().eval()
    with tp.no_grad():
        want = base(inputs(name)).numpy()
    pm = get_peft_model(base, LoHaConfig(**cfg)).eval()
    with tp.no_grad():
        np.testing.assert_array_equal(pm(inputs(name)).numpy(), want)
    pm = get_peft_model(model().eval(), LoHaConfig(**cfg, init_weights=False)).eval()
    with tp.no_grad():
        y = pm(inputs(name)).numpy()
        pm.merge_adapter()
        np.testing.assert_allclose(pm(inputs(name)).numpy(), y, rtol=1e-4, atol=1e-4)
    assert any(".hada_w1_a.default" in n for n, _ in pm.named_parameters())


def test_loha_saves_peft_keys(tmp_path):
    pm = get_peft_model(ModelConv2D(), LoHaConfig(target_modules=["conv2d"], use_effective_conv2d=True))
    pm.save_pretrained(tmp_path)
    from tinypeft.checkpoint_io import read_header
    header, _ = read_header(tmp_path / "adapter_model.safetensors")
    assert sorted(k for k in header if k != "__metadata__") == sorted(
        f"base_model.model.conv2d.hada_{p}" for p in ("t1", "t2", "w1_a", "w1_b", "w2_a", "w2_b"))
    assert header["base_model.model.conv2d.hada_t1"]["shape"] == [8, 8, 3, 3]
