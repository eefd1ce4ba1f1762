"""PiSSA and OLoRA: the model is unchanged at step 0, the factors come from the SVD / QR of W, and a trained
adapter converted at save (path_initial_model_for_weight_conversion) is a plain LoRA on the original weights."""
import numpy as np
import pytest

import tinypeft as tp
from custom_models import MLP, ModelConv2D, ModelEmbConv1D, inputs
from tinypeft.peft import LoraConfig, PeftModel, get_peft_model


def _model():
    tp.manual_seed(0)
    return MLP().eval()


@pytest.mark.parametrize("init", ["pissa", "pissa_niter_6", "olora"])
def test_init_keeps_the_model_and_splits_the_weight(init):
    base = _model()
    W0 = base.lin0.weight.data.copy()
    with tp.no_grad():
        want = base(inputs("MLP")).numpy()
        pm = get_peft_model(base, LoraConfig(target_modules=["lin0"], r=3, lora_alpha=6, init_lora_weights=init))
        np.testing.assert_allclose(pm(inputs("MLP")).numpy(), want, rtol=1e-5, atol=1e-6)
    layer = pm.base_model.model.lin0
    A, B, s = layer.lora_A["default"].weight.data, layer.lora_B["default"].weight.data, layer.scaling["default"]
    np.testing.assert_allclose(layer.base_layer.weight.data + s * B @ A, W0, atol=1e-5)  # W = W_res + s B A
    U, S, Vh = np.linalg.svd(W0.astype(np.float64))
    if init == "pissa":  # s B A is the best rank-3 approximation of W (Eckart-Young)
        np.testing.assert_allclose(s * B @ A, (U[:, :3] * S[:3]) @ Vh[:3], atol=1e-5)
    elif init.startswith("pissa"):  # the randomized SVD: close to the best, never better
        best, got = np.sqrt((S[3:] ** 2).sum()), np.linalg.norm(W0 - s * B @ A)
        assert best - 1e-5 <= got <= 1.05 * best
    else:  # OLoRA: B has orthonormal columns, A is upper triangular
        np.testing.assert_allclose(B.T @ B, np.eye(3), atol=1e-5)
        assert np.allclose(np.tril(A, -1), 0)


def test_conversion_to_lora_on_the_original_weights(tmp_path):
    pm = get_peft_model(_model(), LoraConfig(target_modules=["lin0", "lin1"], r=2, lora_alpha=4,
                                             init_lora_weights="pissa"))
    pm.peft_config["default"].init_lora_weights = True  # as PEFT's docs: the initial adapter is saved as plain LoRA
    pm.save_pretrained(tmp_path / "pissa_init")
    pm.peft_config["default"].init_lora_weights = "pissa"
    rng = np.random.default_rng(0)
    for n, p in pm.named_parameters():  # "training": move every adapter weight
        if p.requires_grad:
            p.data = p.data + 0.1 * rng.standard_normal(p.shape).astype(np.float32)
    pm.eval()
    with tp.no_grad():
        want = pm(inputs("MLP")).numpy()
    pm.save_pretrained(tmp_path / "lora", path_initial_model_for_weight_conversion=str(tmp_path / "pissa_init"))
    config = tp.peft.PeftConfig.from_pretrained(tmp_path / "lora")
    assert (config.r, config.lora_alpha, config.init_lora_weights) == (4, 8, True)
    loaded = PeftModel.from_pretrained(_model(), tmp_path / "lora")  # the original W, not W_res
    with tp.no_grad():
        np.testing.assert_allclose(loaded(inputs("MLP")).numpy(), want, rtol=1e-4, atol=1e-5)
    assert list(pm.peft_config) == ["default"]  # the initial adapter was only borrowed


def test_refusals(tmp_path):
    with pytest.raises(NotImplementedError, match="init_lora_weights"):
        LoraConfig(init_lora_weights="corda")
    with pytest.raises(NotImplementedError, match="Embedding"):
        get_peft_model(ModelEmbConv1D(), LoraConfig(target_modules=["emb"], init_lora_weights="pissa"))
    with pytest.raises(NotImplementedError, match="conv"):
        get_peft_model(ModelConv2D(), LoraConfig(target_modules=["conv2d"], init_lora_weights="olora"))
    pm = get_peft_model(_model(), LoraConfig(target_modules=["lin0"], r=2, init_lora_weights="olora"))
    pm.save_pretrained(tmp_path / "init")  # still says "olora": converting against it would subtract twice
    with pytest.raises(ValueError, match="should be set to `True`"):
        pm.save_pretrained(tmp_path / "out", path_initial_model_for_weight_conversion=str(tmp_path / "init"))
