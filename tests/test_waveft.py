"""WaveFT: the separable inverse wavelet transform against a direct stride-2 transposed convolution, perfect
reconstruction of the Haar and Daubechies-4 filter banks, merge/unmerge, gradients."""
import numpy as np
import pytest

import tinypeft as tp
from custom_models import MLP, ModelEmbConv1D, inputs
from tinypeft.peft import WaveFTConfig, get_peft_model
from tinypeft.peft.tuners.waveft.layer import rec_filters
from tinypeft.testing import gradcheck


def direct_idwt2(C, lo, hi):
    """PEFT's waverec2d written out: each quadrant convolved (transposed, stride 2) with an outer product of the
    filters, the four summed, (2L-3)//2 cropped from every side."""
    H2, W2 = C.shape[0] // 2, C.shape[1] // 2
    L = len(lo)
    quads = [(C[:H2, :W2], lo, lo), (C[:H2, W2:], hi, lo), (C[H2:, :W2], lo, hi), (C[H2:, W2:], hi, hi)]
    out = np.zeros((2 * H2 + L - 2, 2 * W2 + L - 2))
    for q, fr, fc in quads:
        filt = np.outer(fr, fc)
        for i in range(H2):
            for j in range(W2):
                out[2 * i: 2 * i + L, 2 * j: 2 * j + L] += q[i, j] * filt
    pad = (2 * L - 3) // 2
    return out[pad: out.shape[0] - pad, pad: out.shape[1] - pad] if pad else out


@pytest.mark.parametrize("family, target", [("db1", "lin0"), ("sym2", "lin0"), ("sym2", "lin1")])
def test_delta_is_the_direct_inverse_transform(family, target):
    pm = get_peft_model(MLP(), WaveFTConfig(target_modules=[target], n_frequency=15, wavelet_family=family,
                                            scaling=3.0, init_weights=False))
    layer = getattr(pm.base_model.model, target)
    index, (H, W), _ = layer._grids["default"]
    C = np.concatenate([[0.0], layer.waveft_spectrum["default"].data])[index].reshape(H, W)
    lo, hi = rec_filters(family)
    full = direct_idwt2(C, lo, hi) * 3.0
    r0, c0 = (full.shape[0] - layer.out_features) // 2, (full.shape[1] - layer.in_features) // 2
    want = full[r0: r0 + layer.out_features, c0: c0 + layer.in_features]
    np.testing.assert_allclose(layer.get_delta_weight("default"), want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("family", ["db1", "db2"])
def test_filter_banks_reconstruct_perfectly(family):
    """Orthogonal wavelets: sum lo^2 = 1, lo . hi = 0, and lo sums to sqrt 2 (the filters are right)."""
    lo, hi = rec_filters(family)
    assert np.isclose(lo @ lo, 1) and np.isclose(hi @ hi, 1) and np.isclose(lo @ hi, 0)
    assert np.isclose(lo.sum(), np.sqrt(2)) and np.isclose(hi.sum(), 0)
    if len(lo) == 4:  # shifts by 2 are orthogonal too
        assert np.isclose(lo[2:] @ lo[:2], 0)


@pytest.mark.parametrize("name, model, target", [("MLP", MLP, "lin0"), ("EmbConv1D", ModelEmbConv1D, "conv1d")])
def test_init_merge_unmerge(name, model, target):
    base = model().eval()
    with tp.no_grad():
        want = base(inputs(name)).numpy()
        pm = get_peft_model(base, WaveFTConfig(target_modules=[target], n_frequency=4)).eval()
        np.testing.assert_allclose(pm(inputs(name)).numpy(), want, rtol=1e-6)
        pm = get_peft_model(model().eval(), WaveFTConfig(target_modules=[target], n_frequency=4,
                                                         wavelet_family="sym2", init_weights=False)).eval()
        layer = getattr(pm.base_model.model, target)
        W0 = layer.base_layer.weight.data.copy()
        y = pm(inputs(name)).numpy()
        pm.merge_adapter()
        assert not np.allclose(layer.base_layer.weight.data, W0)
        np.testing.assert_allclose(pm(inputs(name)).numpy(), y, rtol=1e-4, atol=1e-5)
        pm.unmerge_adapter()
        np.testing.assert_allclose(layer.base_layer.weight.data, W0, rtol=1e-5, atol=1e-6)


def test_spectrum_gradient_matches_finite_differences():
    pm = get_peft_model(MLP(), WaveFTConfig(target_modules=["lin0"], n_frequency=9, wavelet_family="sym2"))
    layer = pm.base_model.model.lin0
    layer.waveft_spectrum["default"] = tp.nn.Parameter(np.random.default_rng(0).standard_normal(9))  # float64
    assert gradcheck(lambda s: layer.delta("default"), [layer.waveft_spectrum["default"]])


def test_unknown_and_unimplemented_families():
    with pytest.raises(ValueError, match="not supported"):
        WaveFTConfig(wavelet_family="haar")  # PEFT's table has no "haar" either
    with pytest.raises(NotImplementedError, match="coif3"):
        WaveFTConfig(wavelet_family="coif3")
