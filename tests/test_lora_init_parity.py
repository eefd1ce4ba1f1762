"""PiSSA and OLoRA against PEFT (parity marker): from the same base weights, the same residual weights, the same
B A (PiSSA's singular vectors are compared up to their sign, which SVD leaves free), the same outputs; and the
adapters converted to LoRA at save are read by the other library on the original weights with the same outputs."""
import warnings

import numpy as np
import peft
import pytest
import torch

import tinypeft as tp
from test_peft_custom_models import TorchMLP, out_pt, out_tp, to_tp
from tinypeft.peft import LoraConfig, PeftModel, get_peft_model

pytestmark = pytest.mark.parity
CFG = dict(target_modules=["lin0", "lin1"], r=2, lora_alpha=4)


def _pair(init):
    torch.manual_seed(0)
    base_pt = TorchMLP()
    base_tp = to_tp(base_pt, "MLP")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pm_pt = peft.get_peft_model(base_pt, peft.LoraConfig(**CFG, init_lora_weights=init)).eval()
    pm_tp = get_peft_model(base_tp, LoraConfig(**CFG, init_lora_weights=init)).eval()
    return pm_pt, pm_tp


@pytest.mark.parametrize("init", ["pissa", "olora"])
def test_same_split_of_the_weights_as_peft(init):
    pm_pt, pm_tp = _pair(init)
    sd_pt = {k: v.detach().numpy() for k, v in pm_pt.state_dict().items()}
    sd_tp = pm_tp.state_dict()
    for k, v in sd_pt.items():
        ours = np.asarray(sd_tp[k].data)
        if init == "pissa" and (".lora_A." in k or ".lora_B." in k):
            continue  # singular vectors are unique up to sign: compared through B A below
        np.testing.assert_allclose(ours, v, rtol=1e-4, atol=1e-5, err_msg=k)
    for layer in ("lin0", "lin1"):
        pre = f"base_model.model.{layer}"
        BA_pt = sd_pt[f"{pre}.lora_B.default.weight"] @ sd_pt[f"{pre}.lora_A.default.weight"]
        BA_tp = (np.asarray(sd_tp[f"{pre}.lora_B.default.weight"].data)
                 @ np.asarray(sd_tp[f"{pre}.lora_A.default.weight"].data))
        np.testing.assert_allclose(BA_tp, BA_pt, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out_tp(pm_tp, "MLP"), out_pt(pm_pt, "MLP"), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("init", ["pissa", "olora"])
def test_converted_adapters_load_both_ways(init, tmp_path):
    pm_pt, pm_tp = _pair(init)
    pm_tp.load_state_dict({k: v.detach().numpy().copy() for k, v in pm_pt.state_dict().items()})  # same start
    for pm, where in ((pm_pt, "peft"), (pm_tp, "ours")):
        pm.peft_config["default"].init_lora_weights = True
        pm.save_pretrained(tmp_path / where / "init")
        pm.peft_config["default"].init_lora_weights = init
    rng = np.random.default_rng(0)
    with torch.no_grad():  # the same "training" on both: every adapter weight moved alike
        for n, p in pm_pt.named_parameters():
            if p.requires_grad:
                p += torch.from_numpy(0.1 * rng.standard_normal(tuple(p.shape)).astype(np.float32))
    pm_tp.load_state_dict({k: v.detach().numpy().copy() for k, v in pm_pt.state_dict().items()})
    want = out_pt(pm_pt, "MLP")
    np.testing.assert_allclose(out_tp(pm_tp, "MLP"), want, rtol=1e-5, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pm_pt.save_pretrained(tmp_path / "peft" / "lora",
                              path_initial_model_for_weight_conversion=str(tmp_path / "peft" / "init"))
    pm_tp.save_pretrained(tmp_path / "ours" / "lora",
                          path_initial_model_for_weight_conversion=str(tmp_path / "ours" / "init"))
    torch.manual_seed(0)
    original = TorchMLP()  # the weights before PiSSA/OLoRA took their part out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded_pt = peft.PeftModel.from_pretrained(original, tmp_path / "ours" / "lora").eval()
    np.testing.assert_allclose(out_pt(loaded_pt, "MLP"), want, rtol=1e-4, atol=1e-5)
    torch.manual_seed(0)
    loaded_tp = PeftModel.from_pretrained(to_tp(TorchMLP(), "MLP"), tmp_path / "peft" / "lora").eval()
    np.testing.assert_allclose(out_tp(loaded_tp, "MLP"), want, rtol=1e-4, atol=1e-5)
    assert tp.peft.PeftConfig.from_pretrained(tmp_path / "ours" / "lora").to_dict()["r"] == 4
