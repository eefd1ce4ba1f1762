"""AdaLoRA against PEFT on a small run (parity marker): the same weights, ten AdamW steps with the orthogonal
penalty in the loss and update_and_allocate after each step (PEFT's documented loop), then the losses, the rank
masks, every parameter, and the saved adapters read both ways (rank_pattern resizing on load)."""
import warnings

import numpy as np
import peft
import pytest
import torch
from torch import nn as tnn

import tinypeft as tp
from tinypeft import functional as F
from tinypeft import nn
from tinypeft.models.modeling_utils import ModelOutput
from tinypeft.peft import AdaLoraConfig, PeftModel, get_peft_model

pytestmark = pytest.mark.parity

X = np.random.default_rng(0).standard_normal((16, 10)).astype(np.float32)
Y = np.random.default_rng(1).integers(0, 3, 16)
CONFIG = dict(target_modules=["lin0", "lin1"], init_r=6, target_r=2, tinit=2, tfinal=3, deltaT=2, total_step=12,
              orth_reg_weight=0.3, lora_alpha=4)


class Out:
    """What PEFT's AdaLoraModel.forward looks for: an object with a settable .loss."""

    def __init__(self, loss, logits):
        self.loss, self.logits = loss, logits


class TorchNet(tnn.Module):
    def __init__(self):
        super().__init__()
        self.lin0, self.lin1 = tnn.Linear(10, 20), tnn.Linear(20, 3)

    def forward(self, X, labels=None):
        logits = self.lin1(torch.relu(self.lin0(X)))
        return Out(None if labels is None else torch.nn.functional.cross_entropy(logits, labels), logits)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin0, self.lin1 = nn.Linear(10, 20), nn.Linear(20, 3)

    def forward(self, X, labels=None):
        logits = self.lin1(F.relu(self.lin0(X)))
        return ModelOutput(loss=None if labels is None else F.cross_entropy(logits, labels), logits=logits)


def _pair():
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pt = peft.get_peft_model(TorchNet(), peft.AdaLoraConfig(**CONFIG))
        ours = get_peft_model(Net(), AdaLoraConfig(**CONFIG))
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in pt.state_dict().items()})
    return pt, ours


def test_adalora_training_run_matches_peft(tmp_path):
    pt, ours = _pair()
    opt_pt = torch.optim.AdamW([p for p in pt.parameters() if p.requires_grad], lr=0.05)
    opt_tp = tp.optim.AdamW([p for p in ours.parameters() if p.requires_grad], lr=0.05)
    xt, yt = torch.from_numpy(X), torch.from_numpy(Y)
    for step in range(CONFIG["total_step"]):
        # through the tuner, as PEFT's task classes call it (PEFT's plain PeftModel.forward skips the tuner's
        # forward and with it the orthogonal penalty; tinypeft's PeftModel adds it for every task type)
        loss_pt = pt.base_model(xt, labels=yt).loss
        loss_pt.backward()
        opt_pt.step()
        pt.base_model.update_and_allocate(step)
        opt_pt.zero_grad()
        loss_tp = ours(tp.tensor(X), labels=tp.tensor(Y)).loss
        loss_tp.backward()
        opt_tp.step()
        ours.base_model.update_and_allocate(step)
        opt_tp.zero_grad()
        np.testing.assert_allclose(float(loss_tp.item()), float(loss_pt.item()), rtol=1e-5)
        rp_pt = pt.peft_config["default"].rank_pattern
        assert ours.peft_config["default"].rank_pattern == rp_pt, step
    kept = [sum(v) for v in rp_pt.values()]
    assert sum(kept) == CONFIG["target_r"] * 2  # the final budget: target_r per layer on average
    params_pt = dict(pt.named_parameters())
    for n, p in ours.named_parameters():
        np.testing.assert_allclose(p.detach().numpy(), params_pt[n].detach().numpy(), rtol=1e-4, atol=1e-5)
    # saved here, loaded by PEFT (and the other way): the kept ranks only, the same outputs
    pt.eval()
    ours.eval()
    with torch.no_grad():
        want = pt(xt).logits.numpy()
    ours.save_pretrained(tmp_path / "ours")
    pt.save_pretrained(tmp_path / "peft")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded_pt = peft.PeftModel.from_pretrained(TorchNet(), tmp_path / "ours").eval()
        with torch.no_grad():
            np.testing.assert_allclose(loaded_pt(xt).logits.numpy(), want, rtol=1e-5, atol=1e-6)
        base = Net()
        base.load_state_dict({k: v.detach().numpy().copy() for k, v in TorchNet().state_dict().items()})
        torch.manual_seed(0)
        base.load_state_dict({k: v.detach().numpy().copy() for k, v in TorchNet().state_dict().items()})
        loaded_tp = PeftModel.from_pretrained(base, tmp_path / "peft").eval()
    np.testing.assert_allclose(loaded_tp(tp.tensor(X)).logits.numpy(), want, rtol=1e-5, atol=1e-6)
    shapes = {k: tuple(v.shape) for k, v in loaded_pt.state_dict().items() if "lora_E" in k}
    assert shapes == {k: tuple(v.shape) for k, v in loaded_tp.state_dict().items() if "lora_E" in k}
    assert sum(s[0] for s in shapes.values()) == sum(kept)  # the files hold the kept ranks only
