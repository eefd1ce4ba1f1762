"""Prompt tuning and P-tuning on OPT, greedy generation on a left-padded batch, against PEFT 0.21.2 (parity marker).

OPT derives its positions from the attention mask, which PEFT extends by N ones for the virtual tokens, so
the real tokens of a left-padded row sit at positions N + (count of real tokens before them). peft 0.21.2's
own generate() fails on OPT with transformers 5.24 (tests/fixtures/make_peft_fixtures.py, GENERATE_FAILS), so
PEFT's tokens here come from greedy decoding by PEFT's full forward passes, 30 new tokens on three rows with
0, 3 and 1 pads; tinypeft's generate() must give the same tokens with and without its key/value cache.
"""
from pathlib import Path

import numpy as np
import peft
import pytest
import torch
import transformers

import tinypeft as tp
from tinypeft.peft import PromptEncoderConfig, PromptTuningConfig, get_peft_model

pytestmark = pytest.mark.parity

OPT = Path(__file__).parent / "fixtures" / "models" / "opt"
PADS = [0, 3, 1]
STEPS = 30
CONFIGS = {"prompt_tuning": (PromptTuningConfig, peft.PromptTuningConfig, dict(num_virtual_tokens=4)),
           "p_tuning": (PromptEncoderConfig, peft.PromptEncoderConfig, dict(num_virtual_tokens=4,
                                                                             encoder_hidden_size=16))}


def batch(pad_id):
    T = 6
    ids = np.arange(5, 5 + len(PADS) * T).reshape(len(PADS), T)
    mask = (np.arange(T)[None] >= np.array(PADS)[:, None]).astype(np.int64)
    return np.where(mask == 1, ids, pad_id), mask


def peft_greedy(model, ids, mask):
    seq, m = torch.from_numpy(ids), torch.from_numpy(mask)
    with torch.no_grad():
        for _ in range(STEPS):
            nxt = model(input_ids=seq, attention_mask=m).logits[:, -1].argmax(-1)
            seq = torch.cat([seq, nxt[:, None]], 1)
            m = torch.cat([m, torch.ones_like(m[:, :1])], 1)
    return seq.numpy()


@pytest.mark.parametrize("method", sorted(CONFIGS))
@pytest.mark.parametrize("use_cache", [True, False])
def test_left_padded_greedy_generation_matches_peft(method, use_cache):
    ours_cls, theirs_cls, kw = CONFIGS[method]
    torch.manual_seed(0)
    theirs = peft.get_peft_model(transformers.AutoModelForCausalLM.from_pretrained(OPT),
                                 theirs_cls(task_type="CAUSAL_LM", **kw)).eval()
    with torch.no_grad():  # trained-looking prompts: large enough to change every row's continuation
        for p in theirs.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape))
    ours = get_peft_model(tp.AutoModelForCausalLM.from_pretrained(OPT), ours_cls(task_type="CAUSAL_LM", **kw)).eval()
    encoder = {k: v.numpy().copy() for k, v in theirs.state_dict().items() if k.startswith("prompt_encoder.")}
    assert encoder and set(encoder) <= set(ours.state_dict())
    ours.load_state_dict(encoder, strict=False)
    ids, mask = batch(theirs.config.pad_token_id)
    want = peft_greedy(theirs, ids, mask)
    got = ours.generate(input_ids=ids, attention_mask=mask, max_new_tokens=STEPS, do_sample=False,
                        use_cache=use_cache).numpy()
    np.testing.assert_array_equal(got, want)
    plain = tp.AutoModelForCausalLM.from_pretrained(OPT).generate(input_ids=ids, attention_mask=mask,
                                                                   max_new_tokens=STEPS, do_sample=False).numpy()
    assert (plain[:, ids.shape[1]:] != want[:, ids.shape[1]:]).any(axis=1).all()  # the prompts matter in every row
