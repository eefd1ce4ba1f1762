"""LoRA on parameters (LoraConfig.target_parameters, PEFT's ParamWrapper): names, numbers, merging, refusals.

PEFT's own rows ("MLP 1/2 using nn.Parameter LoRA") run side by side with PEFT in test_peft_custom_models.py."""
import json

import numpy as np
import pytest

import tinypeft as tp
from custom_models import MLP, MlpUsingParameters, inputs
from tinypeft.peft import LoraConfig, PeftModel, get_peft_model


def _model(cls=MlpUsingParameters, **kwargs):
    tp.manual_seed(0)
    base = cls()
    for p in base.parameters():
        p.data = np.random.default_rng(1).standard_normal(p.shape).astype(np.float32) * 0.3
    return get_peft_model(base, LoraConfig(init_lora_weights=False, **kwargs)).eval()


def test_names_shapes_and_the_update_the_owner_sees():
    model = _model(target_parameters=["lin0.weight"], r=4, lora_alpha=8)
    assert sorted(n for n, p in model.named_parameters() if p.requires_grad) == [
        "base_model.model.lin0.lora_A.default.weight", "base_model.model.lin0.lora_B.default.weight"]
    layer = model.base_model.model.lin0
    W = layer.base_layer.weight.detach().numpy()  # [10, 20]: out = its first axis, as PEFT reads a 2-D parameter
    A, B = layer.lora_A["default"].weight.detach().numpy(), layer.lora_B["default"].weight.detach().numpy()
    assert A.shape == (4, 20) and B.shape == (10, 4)
    X = inputs("MLP")
    with tp.no_grad():
        got = model(X).numpy()
        layer.base_layer.weight.data = W + 2.0 * B @ A  # the owner's own forward with W + s B A
        with model.disable_adapter():
            want = model(X).numpy()
        layer.base_layer.weight.data = W
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert layer.base_layer.weight is layer._param()  # the parameter is back in its place after the call


def test_gradients_merge_unmerge_save_and_unload(tmp_path):
    model = _model(MLP, target_modules=["lin0"], target_parameters=["lin1.weight"])
    X = inputs("MLP")
    model(X).sum().backward()
    for n, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, n
        assert not p.requires_grad or np.abs(p.grad.numpy()).sum() > 0, n
    with tp.no_grad():
        want = model(X).numpy()
        model.merge_adapter()
        np.testing.assert_allclose(model(X).numpy(), want, rtol=1e-5, atol=1e-6)
        model.unmerge_adapter()
        np.testing.assert_allclose(model(X).numpy(), want, rtol=1e-5, atol=1e-6)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "adapter_config.json").read_text())
    assert saved["target_parameters"] == ["lin1.weight"]
    loaded = PeftModel.from_pretrained(_plain_mlp(model), tmp_path)
    with tp.no_grad():
        np.testing.assert_allclose(loaded(X).numpy(), want, rtol=1e-5, atol=1e-6)
        plain = model.merge_and_unload()
        assert type(plain.lin1) is tp.nn.Linear and type(plain.lin0) is tp.nn.Linear
        np.testing.assert_allclose(plain(X).numpy(), want, rtol=1e-5, atol=1e-6)


def _plain_mlp(model):
    """A fresh MLP with the base weights of `model` (adapters left out)."""
    base = MLP()
    sd = {k.replace("base_layer.", ""): v for k, v in model.base_model.model.state_dict().items()
          if "lora_" not in k}
    base.load_state_dict(sd)
    return base


@pytest.mark.parametrize("kwargs, error, match", [
    ({"lora_dropout": 0.1}, ValueError, "lora_dropout"),
    ({"use_dora": True}, ValueError, "use_dora"),
    ({"lora_bias": True}, ValueError, "lora_bias"),
    ({"target_parameters": ["lin0.weight", "lin0.bias"]}, NotImplementedError, "two parameters"),
    ({"target_parameters": ["lin0.bias"]}, NotImplementedError, "2-D"),
    ({"target_modules": ["lin0"], "target_parameters": ["lin0.weight"], "cls": MLP}, ValueError, "not a valid target"),
])
def test_what_peft_refuses_or_tinypeft_does_not_implement(kwargs, error, match):
    kwargs = {"target_parameters": ["lin0.weight"], **kwargs}
    cls = kwargs.pop("cls", MlpUsingParameters)
    with pytest.raises(error, match=match):
        _model(cls, **kwargs)
