"""LoRA adapters made by the real PEFT load here and give PEFT's outputs; ours load in PEFT (parity marker).

tests/fixtures/make_peft_fixtures.py made each case with peft 0.21.2 on the tiny fixture models and stored
the inputs and PEFT's logits and greedy generations beside the adapter.
"""
import json
from pathlib import Path

import numpy as np
import pytest

import tinypeft as tp
from tinypeft.peft import AutoPeftModelForCausalLM, LoraConfig, PeftModel, get_peft_model
from tinypeft.peft.auto import _auto_for_task

PEFT = Path(__file__).parent / "fixtures" / "peft"
LORA_CASES = ["lora_gpt2", "lora_gpt2_all_linear", "lora_opt", "lora_llama", "dora_llama", "lora_bert_seqcls",
              "lora_t5", "lora_mt5", "lora_embedding_gpt2"]
COUNTS = json.loads((PEFT / "counts.json").read_text())["cases"]


def load(case, adapter_dir=None):
    cfg = json.loads((PEFT / case / "adapter_config.json").read_text())
    base = _auto_for_task(cfg["task_type"]).from_pretrained(cfg["base_model_name_or_path"])
    return PeftModel.from_pretrained(base, adapter_dir or PEFT / case)


def run(model, ref):
    kw = dict(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"])
    if "decoder_input_ids" in ref:
        kw["decoder_input_ids"] = ref["decoder_input_ids"]
    with tp.no_grad():
        return model(**kw).logits.numpy()


def compare_logits(got, want, mask):
    if got.ndim == 3 and got.shape[1] == mask.shape[1]:  # decoder-only: only real tokens are defined
        real = mask.astype(bool)
        got, want = got[real], want[real]
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("case", LORA_CASES)
def test_peft_adapter_gives_peft_outputs(case):
    ref = dict(np.load(PEFT / case / "reference.npz"))
    model = load(case)
    compare_logits(run(model, ref), ref["logits"], ref["attention_mask"])
    if "gen_output_forward" in ref:
        out = model.generate(input_ids=ref["gen_input_ids"], attention_mask=ref["gen_attention_mask"],
                             max_new_tokens=ref["gen_output_forward"].shape[1] - (
                                 1 if "decoder_input_ids" in ref else ref["gen_input_ids"].shape[1]))
        np.testing.assert_array_equal(out.numpy(), ref["gen_output_forward"])


@pytest.mark.parametrize("case", LORA_CASES)
def test_same_parameters_and_counts_as_peft(case, capsys):
    assert sorted(load(case).state_dict()) == sorted(json.loads((PEFT / case / "keys.json").read_text()))
    cfg = json.loads((PEFT / case / "adapter_config.json").read_text())
    base = _auto_for_task(cfg["task_type"]).from_pretrained(cfg["base_model_name_or_path"])
    trainable = PeftModel.from_pretrained(base, PEFT / case, is_trainable=True)  # as PEFT counted it in training
    trainable.print_trainable_parameters()
    assert capsys.readouterr().out.strip() == COUNTS[case]["line"]


def test_merged_model_gives_peft_merged_logits():
    ref = dict(np.load(PEFT / "lora_opt" / "reference.npz"))
    merged = load("lora_opt").merge_and_unload()
    compare_logits(run(merged, ref), ref["merged_logits"], ref["attention_mask"])


def test_two_adapters_from_peft_subfolders():
    ref = dict(np.load(PEFT / "lora_opt_two" / "reference.npz"))
    model = load("lora_opt_two")
    model.load_adapter(PEFT / "lora_opt_two" / "other", adapter_name="other")
    compare_logits(run(model, ref), ref["logits.default"], ref["attention_mask"])
    model.set_adapter("other")
    compare_logits(run(model, ref), ref["logits.other"], ref["attention_mask"])


def test_auto_peft_model_resolves_the_base_from_the_adapter_config():
    ref = dict(np.load(PEFT / "lora_llama" / "reference.npz"))
    model = AutoPeftModelForCausalLM.from_pretrained(PEFT / "lora_llama")
    compare_logits(run(model, ref), ref["logits"], ref["attention_mask"])


# -- the other direction: adapters saved here, loaded by the real peft ---------------------------------------
ROUND_TRIP = {
    "gpt2": ("CAUSAL_LM", dict(r=4, target_modules=["c_attn", "c_fc"], bias="lora_only")),
    "opt": ("CAUSAL_LM", dict(r=4, lora_alpha=16, target_modules="all-linear")),
    "llama": ("CAUSAL_LM", dict(r=2, use_dora=True, use_rslora=True)),
    "bert": ("SEQ_CLS", dict(r=2)),
    "t5": ("SEQ_2_SEQ_LM", dict(r=2, rank_pattern={"v": 3})),
    "mt5": ("SEQ_2_SEQ_LM", dict(r=2, target_modules=["q", "k", "v", "o", "wi_0", "wi_1", "wo"], lora_dropout=0.1)),
}


@pytest.mark.parity
@pytest.mark.parametrize("arch", sorted(ROUND_TRIP))
def test_adapter_saved_here_loads_in_peft(arch, tmp_path):
    import torch
    import peft
    import transformers
    task, options = ROUND_TRIP[arch]
    base_dir = f"tests/fixtures/models/{arch}"
    tp.manual_seed(0)  # the LoRA init draw: fixed, so the result does not depend on the tests run before
    ours = get_peft_model(_auto_for_task(task).from_pretrained(base_dir), LoraConfig(task_type=task, **options))
    rng = np.random.default_rng(0)
    for n, p in ours.named_parameters():
        if p.requires_grad:
            p.data = (p.data + rng.standard_normal(p.shape) * 0.2).astype(np.float32)
    ours.save_pretrained(tmp_path)

    auto = {"CAUSAL_LM": transformers.AutoModelForCausalLM, "SEQ_CLS": transformers.AutoModelForSequenceClassification,
            "SEQ_2_SEQ_LM": transformers.AutoModelForSeq2SeqLM}[task]
    theirs = peft.PeftModel.from_pretrained(auto.from_pretrained(base_dir), str(tmp_path)).eval()
    ids = np.array([[5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 0, 0]])
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    kw = dict(input_ids=ids, attention_mask=mask)
    if task == "SEQ_2_SEQ_LM":
        kw["decoder_input_ids"] = np.array([[0, 5, 6], [0, 7, 8]])
    with torch.no_grad():
        want = theirs(**{k: torch.tensor(v) for k, v in kw.items()}).logits.numpy()
    ours.eval()
    with tp.no_grad():
        got = ours(**kw).logits.numpy()
    compare_logits(got, want, mask)
