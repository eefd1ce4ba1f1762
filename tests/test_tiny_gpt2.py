"""The tiny GPT-2 example: corpus, pretraining, and LoRA / prompt tuning toward the pirate style.

The default tests run a miniature (a 40k-parameter model, a few dozen steps: seconds); the slow test runs
the real thing (`python -m tinypeft.examples.tiny_gpt2 pretrain` then `finetune`) and checks its figures.
"""
import dataclasses
import json

import numpy as np
import pytest

from tinypeft import AutoModelForCausalLM, AutoTokenizer
from tinypeft.examples import tiny_gpt2 as tg
from tinypeft.examples.tiny_corpus import generate_documents, restyle


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_gpt2")
    logs = []
    base = tg.pretrain(tg.MINI_PRETRAIN, output=root / "base", progress=False, log=logs.append)
    results = tg.finetune(base, tg.MINI_FINETUNE, output=root / "pirate", progress=False, log=logs.append)
    return base, results, logs


def test_corpus_is_deterministic_and_grammatical():
    a, b = generate_documents(50, seed=3), generate_documents(50, seed=3)
    assert a == b and a != generate_documents(50, seed=4)
    text = " ".join(a)
    assert " a apple" not in text and " an apple" in " ".join(generate_documents(500, seed=0))
    words = set(" ".join(generate_documents(2000, seed=0)).lower().replace(".", " ").replace(",", " ").split())
    assert 200 < len(words) < 400  # a small vocabulary, but not a trivial one
    assert restyle("The cat slept. It ran by the lake.") == "Arr, the cat slept, matey! Arr, it ran by the lake, matey!"
    assert tg.MARKER not in text


def test_pretrain_writes_a_transformers_folder_and_lowers_perplexity(mini):
    base, _, _ = mini
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "pretrain_metrics.json",
                 "trainer_log.jsonl"):
        assert (base / name).is_file(), name
    assert not [p for p in base.parent.iterdir() if p.name.startswith(".")]  # no staging folder left behind
    assert not tg.checkpoints_dir(base).exists()  # removed once the model is saved
    metrics = json.loads((base / "pretrain_metrics.json").read_text())
    before, after = metrics["perplexity_before"], metrics["perplexity_after"]
    assert before["valid"] > 0.8 * tg.MINI_PRETRAIN.vocab_size  # an untrained model is near uniform
    assert after["valid"] < before["valid"] / 3
    assert after["train"] < before["train"] / 3


def test_the_saved_model_loads_and_gives_the_recorded_perplexity(mini):
    base, _, _ = mini
    model = AutoModelForCausalLM.from_pretrained(base)
    tok = AutoTokenizer.from_pretrained(base)
    s = tg.MINI_PRETRAIN
    assert model.config.n_embd == s.n_embd and len(tok) == model.config.vocab_size
    docs = generate_documents(s.n_docs + s.n_valid_docs, seed=s.corpus_seed)[s.n_docs:]
    valid = tg.block_batches(tg.lm_blocks(tok, docs, s.n_positions)[:64], s.batch_size)
    recorded = json.loads((base / "pretrain_metrics.json").read_text())["perplexity_after"]["valid"]
    assert tg.perplexity(model, valid) == pytest.approx(recorded, rel=1e-4)
    text = "The old farmer ate a warm pie in the kitchen."
    assert tok.decode(tok(text)["input_ids"]) == text


def test_pretrain_reuses_a_finished_folder(mini, tmp_path):
    base, _, _ = mini
    stamp = (base / "model.safetensors").stat().st_mtime_ns
    logs = []
    assert tg.pretrain(tg.MINI_PRETRAIN, output=base, progress=False, log=logs.append) == base
    assert "already holds" in logs[0] and (base / "model.safetensors").stat().st_mtime_ns == stamp
    other = dataclasses.replace(tg.MINI_PRETRAIN, max_steps=41)
    assert other.key() != tg.MINI_PRETRAIN.key()


def test_finetune_lowers_pirate_perplexity_and_saves_adapters(mini):
    base, results, logs = mini
    before = results["base"]["pirate_perplexity"]
    lora = results["lora"]
    assert lora["pirate_perplexity"] < before
    assert lora["trainable_parameters"] == tg.MINI_PRETRAIN.n_layer * tg.MINI_FINETUNE.lora_r * (
        tg.MINI_PRETRAIN.n_embd + 3 * tg.MINI_PRETRAIN.n_embd)  # A [r, in] and B [3*in, r] per c_attn
    assert len(lora["samples"]) == tg.MINI_FINETUNE.n_prompts
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        assert (base.with_name("pirate") / "lora" / name).is_file()
    assert any("pirate perplexity" in line for line in logs)
    pt = results["prompt_tuning"]
    assert pt["trainable_parameters"] == tg.MINI_FINETUNE.num_virtual_tokens * tg.MINI_PRETRAIN.n_embd
    assert (base.with_name("pirate") / "prompt_tuning" / "adapter_model.safetensors").is_file()


def test_saved_lora_adapter_reloads_to_the_same_perplexity(mini):
    from tinypeft.peft import PeftModel

    base, results, _ = mini
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), base.with_name("pirate") / "lora")
    tok = AutoTokenizer.from_pretrained(base)
    s = tg.MINI_FINETUNE
    pirate = generate_documents(s.n_train_docs + s.n_valid_docs, seed=s.corpus_seed, min_sentences=2,
                                max_sentences=3, style="pirate")[s.n_train_docs:]
    max_length = tg.MINI_PRETRAIN.n_positions - s.num_virtual_tokens
    from tinypeft.data import DataCollatorForLanguageModeling

    valid = tg.example_batches(tg.doc_examples(tok, pirate, max_length),
                               DataCollatorForLanguageModeling(tok, mlm=False), s.batch_size)
    assert tg.perplexity(model, valid) == pytest.approx(results["lora"]["pirate_perplexity"], rel=1e-4)


def test_a_killed_pretrain_resumes_from_its_checkpoint_to_the_same_model(mini, tmp_path, monkeypatch):
    from tinypeft.checkpoint_io import load_file
    from tinypeft.models.gpt2 import GPT2LMHeadModel

    uninterrupted, _, _ = mini
    out = tmp_path / "base"
    forward, calls = GPT2LMHeadModel.forward, []

    def killed_at_step_25(self, *args, **kwargs):
        if self.training:  # the Trainer's steps, not the perplexity measurements (eval mode)
            calls.append(1)
            if len(calls) == 25:
                raise KeyboardInterrupt
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(GPT2LMHeadModel, "forward", killed_at_step_25)
    with pytest.raises(KeyboardInterrupt):
        tg.pretrain(tg.MINI_PRETRAIN, output=out, progress=False, log=lambda m: None)
    monkeypatch.setattr(GPT2LMHeadModel, "forward", forward)
    work = tg.checkpoints_dir(out)
    assert not out.exists() and [p.name for p in work.iterdir() if p.name.startswith("checkpoint-")] == ["checkpoint-20"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing hidden beside it
    # what a SIGKILL could leave: the Trainer's half-written checkpoint, an older version's hidden staging
    (work / ".tmp-checkpoint-30-abc").mkdir()
    (tmp_path / ".base.x1y2z3").mkdir()

    logs = []
    assert tg.pretrain(tg.MINI_PRETRAIN, output=out, progress=False, log=logs.append) == out
    assert any(line.startswith(f"resuming from {work / 'checkpoint-20'} (step 20 of 40)") for line in logs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base"]  # checkpoints and leftovers gone
    ours, theirs = load_file(out / "model.safetensors"), load_file(uninterrupted / "model.safetensors")
    assert ours.keys() == theirs.keys()
    for key in ours:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_command_line_max_steps_must_be_positive(capsys):
    with pytest.raises(SystemExit) as e:
        tg.main(["pretrain", "--max-steps", "0"])
    assert e.value.code == 2 and "--max-steps: must be a whole number > 0" in capsys.readouterr().err


def test_command_line_corpus(tmp_path):
    out = tmp_path / "corpus.txt"
    tg.main(["corpus", "--output", str(out), "--n-docs", "20"])
    assert out.read_text().splitlines() == generate_documents(20)


@pytest.mark.parity
def test_transformers_loads_the_pretrained_folder(mini):
    import torch
    import transformers
    base, _, _ = mini
    theirs = transformers.AutoModelForCausalLM.from_pretrained(base).eval()
    their_tok = transformers.AutoTokenizer.from_pretrained(base)
    ours, our_tok = AutoModelForCausalLM.from_pretrained(base), AutoTokenizer.from_pretrained(base)
    texts = ["The brave sailor found a shiny key on the bridge.", "Arr, the cat slept, matey!"]
    assert their_tok(texts)["input_ids"] == our_tok(texts)["input_ids"]
    batch = our_tok(texts, padding=True, return_tensors="np")
    with torch.no_grad():
        expected = theirs(input_ids=torch.tensor(batch["input_ids"]),
                          attention_mask=torch.tensor(batch["attention_mask"])).logits.numpy()
    got = ours(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.data
    mask = batch["attention_mask"].astype(bool)
    np.testing.assert_allclose(got[mask], expected[mask], atol=2e-4, rtol=1e-4)


@pytest.mark.slow
def test_real_pretraining_and_finetuning(tmp_path):
    """The tutorial-sized run (minutes): the figures the example's docstring and README promise."""
    base = tg.pretrain(output=tmp_path / "base", progress=False)
    metrics = json.loads((base / "pretrain_metrics.json").read_text())
    assert metrics["perplexity_before"]["valid"] > 500
    assert metrics["perplexity_after"]["valid"] < 10
    results = tg.finetune(base, output=tmp_path / "pirate", progress=False)
    before = results["base"]
    assert before["marker_rate"] == 0
    lora = results["lora"]
    assert lora["pirate_perplexity"] < before["pirate_perplexity"] / 20
    assert lora["marker_rate"] >= 0.75
    # 2k parameters in front of a 1M-parameter model learn the sentence shape (commas, "Arr,") but not
    # to spell a word the base never saw: perplexity falls, the sign-off stays rare (see the example)
    assert results["prompt_tuning"]["pirate_perplexity"] < before["pirate_perplexity"] / 5
