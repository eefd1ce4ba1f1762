"""Llama-Adapter (AdaptionPromptConfig) against PEFT 0.21.2 on the tiny random Llama and GPT-2 (parity marker).

The tiny Llama (tests/fixtures/models/llama) has grouped-query attention (4 query heads, 2 key/value heads), so
the prompt heads' sharing is checked too; GPT-2 runs PEFT's AdaptedAttentionGPT. PEFT's adapter tensors are copied into ours (PEFT's in-memory keys
carry no adapter name, ours do: `...adaption_prompt` -> `...adaption_prompt.default`); the gates are set away
from their zero init so that the prompts matter and get gradients.
"""
import json
from pathlib import Path

import numpy as np
import peft
import pytest
import torch
import transformers

import tinypeft as tp
from tinypeft.peft import AdaptionPromptConfig, PeftModel, get_peft_model

pytestmark = pytest.mark.parity

MODELS = Path(__file__).parent / "fixtures" / "models"
LLAMA = MODELS / "llama"
ATTN = {"llama": "model.layers.{}.self_attn", "gpt2": "transformer.h.{}.attn"}
IDS = np.array([[5, 6, 7, 8, 9], [10, 11, 12, 13, 14]])
PADDED = np.array([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])


def close(got, want, rtol=1e-5):
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * float(np.abs(want).max()))


def pair(adapter_len=3, adapter_layers=2, gate=(0.7, -0.4), arch="llama"):
    torch.manual_seed(0)
    kw = dict(task_type="CAUSAL_LM", adapter_len=adapter_len, adapter_layers=adapter_layers)
    theirs = peft.get_peft_model(transformers.AutoModelForCausalLM.from_pretrained(MODELS / arch),
                                 peft.AdaptionPromptConfig(**kw))
    ours = get_peft_model(tp.AutoModelForCausalLM.from_pretrained(MODELS / arch), AdaptionPromptConfig(**kw))
    gates = iter(gate)
    with torch.no_grad():
        for n, p in theirs.named_parameters():
            if n.endswith("adaption_gate"):
                p.fill_(next(gates))
    copy_adapter(theirs, ours, "default")
    return theirs.eval(), ours.eval()


def copy_adapter(theirs, ours, name):
    state = {f"{k}.{name}": v.detach().numpy().copy() for k, v in theirs.state_dict().items() if ".adaption_" in k}
    assert state and set(state) <= set(ours.state_dict())
    ours.load_state_dict(state, strict=False)


def logits_pt(model, mask):
    with torch.no_grad():
        return model(input_ids=torch.from_numpy(IDS), attention_mask=torch.from_numpy(mask)).logits.numpy()


def logits_tp(model, mask):
    with tp.no_grad():
        return model(input_ids=IDS, attention_mask=mask).logits.numpy()


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("adapter_len,adapter_layers", [(3, 2), (1, 1), (5, 2)])
def test_outputs_and_gradients_match_peft(adapter_len, adapter_layers, arch):
    theirs, ours = pair(adapter_len, adapter_layers, arch=arch)
    real = PADDED.astype(bool)  # a fully masked (pad) query row is undefined in both libraries
    close(logits_tp(ours, PADDED)[real], logits_pt(theirs, PADDED)[real])
    out_t = theirs(input_ids=torch.from_numpy(IDS), labels=torch.from_numpy(IDS))
    out_o = ours(input_ids=IDS, labels=IDS)
    close(out_o.loss.detach().numpy(), out_t.loss.detach().numpy())
    out_t.loss.backward()
    out_o.loss.backward()
    grads = {n: p.grad.numpy() for n, p in theirs.named_parameters() if p.requires_grad}
    assert len(grads) == 2 * adapter_layers
    assert sorted(f"{n}.default" for n in grads) == sorted(n for n, p in ours.named_parameters() if p.requires_grad)
    for n, g in grads.items():
        assert np.abs(g).max() > 0
        close(ours.get_parameter(f"{n}.default").grad.numpy(), g)


def test_zero_init_gate_gives_the_base_model_and_the_gate_gradient():
    theirs, ours = pair(gate=(0.0, 0.0))
    base = tp.AutoModelForCausalLM.from_pretrained(LLAMA)
    with tp.no_grad():
        np.testing.assert_array_equal(logits_tp(ours, np.ones_like(IDS)), base(input_ids=IDS).logits.numpy())
    out_t, out_o = theirs(input_ids=torch.from_numpy(IDS), labels=torch.from_numpy(IDS)), ours(input_ids=IDS, labels=IDS)
    out_t.loss.backward()
    out_o.loss.backward()
    for n, p in theirs.named_parameters():
        if p.requires_grad:  # only the gates move at first: the prompts' gradient is multiplied by g = 0
            close(ours.get_parameter(f"{n}.default").grad.numpy(), p.grad.numpy())


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_config_and_files_are_peft_s_both_ways(tmp_path, arch):
    theirs, ours = pair(arch=arch)
    want = logits_pt(theirs, np.ones_like(IDS))
    theirs.save_pretrained(tmp_path / "theirs")
    ours.save_pretrained(tmp_path / "ours")
    a = json.loads((tmp_path / "ours" / "adapter_config.json").read_text())
    b = json.loads((tmp_path / "theirs" / "adapter_config.json").read_text())
    assert sorted(a) == sorted(b)
    assert {k: v for k, v in a.items() if k != "base_model_name_or_path"} == {
        k: v for k, v in b.items() if k != "base_model_name_or_path"}
    from safetensors.numpy import load_file

    fa, fb = load_file(tmp_path / "ours" / "adapter_model.safetensors"), load_file(
        tmp_path / "theirs" / "adapter_model.safetensors")
    assert sorted(fa) == sorted(fb) == sorted(
        f"base_model.model.{ATTN[arch].format(i)}.adaption_{w}" for i in (0, 1) for w in ("prompt", "gate"))
    in_peft = peft.PeftModel.from_pretrained(transformers.AutoModelForCausalLM.from_pretrained(MODELS / arch),
                                             tmp_path / "ours").eval()
    close(logits_pt(in_peft, np.ones_like(IDS)), want)
    in_ours = PeftModel.from_pretrained(tp.AutoModelForCausalLM.from_pretrained(MODELS / arch), tmp_path / "theirs")
    close(logits_tp(in_ours, np.ones_like(IDS)), want)


def test_second_adapter_set_adapter_and_disable_match_peft():
    theirs, ours = pair()
    theirs.add_adapter("other", peft.AdaptionPromptConfig(task_type="CAUSAL_LM", adapter_len=2, adapter_layers=1))
    ours.add_adapter("other", AdaptionPromptConfig(task_type="CAUSAL_LM", adapter_len=2, adapter_layers=1))
    ones = np.ones_like(IDS)
    close(logits_tp(ours, ones), logits_pt(theirs, ones))  # adding does not change the active adapter
    theirs.set_adapter("other")
    ours.set_adapter("other")
    with torch.no_grad():
        for n, p in theirs.named_parameters():
            if n.endswith("adaption_gate"):
                p.fill_(1.5)
    copy_adapter(theirs, ours, "other")
    close(logits_tp(ours, ones), logits_pt(theirs, ones))
    with theirs.disable_adapter(), ours.disable_adapter():
        close(logits_tp(ours, ones), logits_pt(theirs, ones))


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_greedy_generation_matches_peft(arch):
    theirs, ours = pair(gate=(2.0, 3.0), arch=arch)
    ids = IDS[:1]
    want = theirs.generate(input_ids=torch.from_numpy(ids), max_new_tokens=8, do_sample=False).numpy()
    got = ours.generate(input_ids=ids, max_new_tokens=8, do_sample=False)
    np.testing.assert_array_equal(np.asarray(got.numpy() if hasattr(got, "numpy") else got), want)
