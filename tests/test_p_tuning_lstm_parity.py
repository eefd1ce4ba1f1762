"""P-tuning with PEFT's LSTM encoder, and nn.LSTM itself, against torch / PEFT 0.21.2 (parity marker).

The same tiny GPT-2 (tests/fixtures/models/gpt2) in both libraries, PromptEncoderConfig(encoder_reparameterization_type
="LSTM"): PEFT's encoder weights are copied into ours by state-dict key; logits and every encoder gradient must agree,
and the adapter files must load both ways.
"""
from pathlib import Path

import numpy as np
import peft
import pytest
import torch
import transformers

import tinypeft as tp
from tinypeft import nn
from tinypeft.peft import PeftModel, PromptEncoderConfig, get_peft_model

pytestmark = pytest.mark.parity

MODELS = Path(__file__).parent / "fixtures" / "models"
IDS = np.array([[5, 6, 7, 8, 9], [10, 11, 12, 13, 14]])
MASK = np.array([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])
CONFIG = dict(task_type="CAUSAL_LM", num_virtual_tokens=4, encoder_hidden_size=8,
              encoder_reparameterization_type="LSTM")


def close(got, want, rtol=1e-5):
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * float(np.abs(want).max()))


@pytest.mark.parametrize("kw", [dict(num_layers=2, bidirectional=True, batch_first=True), dict(),
                                dict(num_layers=3, bias=False), dict(num_layers=2, bidirectional=True)])
def test_lstm_matches_torch(kw):
    torch.manual_seed(0)
    theirs = torch.nn.LSTM(6, 5, **kw)
    ours = nn.LSTM(6, 5, **kw)
    assert list(dict(ours.named_parameters())) == list(dict(theirs.named_parameters()))
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((3, 4, 6)).astype(np.float32)
    h0 = np.random.default_rng(1).standard_normal((theirs.num_layers * (1 + theirs.bidirectional), 3 if kw.get(
        "batch_first") else 4, 5)).astype(np.float32)
    xt, ht, ct = (torch.tensor(a, requires_grad=True) for a in (x, h0, -h0))
    xo, ho, co = (tp.tensor(a, requires_grad=True) for a in (x, h0, -h0))
    out_t, (hn_t, cn_t) = theirs(xt, (ht, ct))
    out_o, (hn_o, cn_o) = ours(xo, (ho, co))
    for a, b in ((out_o, out_t), (hn_o, hn_t), (cn_o, cn_t)):
        close(a.detach().numpy(), b.detach().numpy())
    cot = np.random.default_rng(2).standard_normal(out_t.shape).astype(np.float32)
    ((out_t * torch.from_numpy(cot)).sum() + (hn_t * cn_t).sum()).backward()
    ((out_o * tp.tensor(cot)).sum() + (hn_o * cn_o).sum()).backward()
    for a, b in ((xo, xt), (ho, ht), (co, ct)):
        close(a.grad.numpy(), b.grad.numpy())
    for n, p in theirs.named_parameters():
        close(ours.get_parameter(n).grad.numpy(), p.grad.numpy())


def build():
    torch.manual_seed(0)
    theirs = peft.get_peft_model(transformers.AutoModelForCausalLM.from_pretrained(MODELS / "gpt2"),
                                 peft.PromptEncoderConfig(**CONFIG))
    ours = get_peft_model(tp.AutoModelForCausalLM.from_pretrained(MODELS / "gpt2"), PromptEncoderConfig(**CONFIG))
    want = {k: v for k, v in theirs.state_dict().items() if k.startswith("prompt_encoder.")}
    assert sorted(want) == sorted(k for k in ours.state_dict() if k.startswith("prompt_encoder."))
    assert any("lstm_head.weight_hh_l1_reverse" in k for k in want)
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in want.items()}, strict=False)
    return theirs.eval(), ours.eval()


def loss_pair(theirs, ours):
    labels = np.where(MASK == 1, IDS, -100)
    out_t = theirs(input_ids=torch.from_numpy(IDS), attention_mask=torch.from_numpy(MASK),
                   labels=torch.from_numpy(labels))
    out_o = ours(input_ids=IDS, attention_mask=MASK, labels=labels)
    return out_t, out_o


def test_p_tuning_lstm_outputs_and_gradients_match_peft():
    theirs, ours = build()
    out_t, out_o = loss_pair(theirs, ours)
    real = np.concatenate([np.ones((2, 4), bool), MASK.astype(bool)], axis=1)  # virtual tokens, then real ones
    close(out_o.logits.detach().numpy()[real], out_t.logits.detach().numpy()[real])
    out_t.loss.backward()
    out_o.loss.backward()
    grads = {n: p.grad for n, p in theirs.named_parameters() if p.requires_grad}
    assert sorted(grads) == sorted(n for n, p in ours.named_parameters() if p.requires_grad)
    for n, g in grads.items():
        close(ours.get_parameter(n).grad.numpy(), g.numpy())


def test_p_tuning_lstm_adapter_files_load_both_ways(tmp_path):
    theirs, ours = build()
    with torch.no_grad():
        want = theirs(input_ids=torch.from_numpy(IDS), attention_mask=torch.from_numpy(MASK)).logits.numpy()
    ours.save_pretrained(tmp_path / "ours")
    theirs.save_pretrained(tmp_path / "theirs")
    base = transformers.AutoModelForCausalLM.from_pretrained(MODELS / "gpt2")
    in_peft = peft.PeftModel.from_pretrained(base, tmp_path / "ours").eval()
    in_ours = PeftModel.from_pretrained(tp.AutoModelForCausalLM.from_pretrained(MODELS / "gpt2"), tmp_path / "theirs")
    assert in_ours.peft_config["default"].encoder_reparameterization_type == "LSTM"
    with torch.no_grad():
        close(in_peft(input_ids=torch.from_numpy(IDS), attention_mask=torch.from_numpy(MASK)).logits.numpy(), want)
    with tp.no_grad():
        close(in_ours(input_ids=IDS, attention_mask=MASK).logits.numpy(), want)
