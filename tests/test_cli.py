"""The `tinypeft` command: help, clear usage errors (exit code 2), and train -> generate -> merge on the
tiny fixture models; the demo's data file; the demo itself (slow: it fetches MiniLM through pip)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinypeft.demo import DATA_FILE, LABELS, load_topics
from cli_helpers import run, write_jsonl  # noqa: E402

ROOT = Path(__file__).parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
GPT2, BERT = str(FIXTURES / "models" / "gpt2"), str(FIXTURES / "models" / "bert")
BPE = str(FIXTURES / "tokenizers" / "bpe")  # the bert fixture has no tokenizer; this one's ids fit its vocab


@pytest.fixture
def cls_data(tmp_path):
    rows = [{"text": f"a good film {i}" if i % 2 else f"bad movie {i}", "label": "pos" if i % 2 else "neg"}
            for i in range(16)]
    return write_jsonl(tmp_path / "cls.jsonl", rows)


@pytest.fixture
def lm_data(tmp_path):
    return write_jsonl(tmp_path / "lm.jsonl", [{"prompt": f"Q: {i} plus one?", "completion": f" A: {i + 1}"}
                                               for i in range(12)])


# ----------------------------------------------------------------------------- help and usage errors

@pytest.mark.parametrize("command", [None, "demo", "train", "generate", "merge", "info"])
def test_help(capsys, command):
    code, out, _ = run(capsys, *([command] if command else []), "--help")
    assert code == 0
    assert out.startswith("usage: tinypeft" + (f" {command}" if command else ""))
    if command == "train":  # the expected columns are documented where users look
        assert "SEQ_CLS text,label" in out and "prompt,completion" in out


def test_module_runs_as_a_script():
    proc = subprocess.run([sys.executable, "-m", "tinypeft.cli", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "demo" in proc.stdout and "merge" in proc.stdout


def test_pyproject_declares_the_console_script_and_ships_the_data():
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^tinypeft = "tinypeft.cli:main"$', text, re.M)
    assert '"tinypeft.demo" = ["*.jsonl"]' in text


@pytest.mark.parametrize("argv, names", [
    ([], "required"),
    (["nope"], "invalid choice"),
    (["info"], "--model"),
    (["info", "--model", "tests/fixtures/models/missing"], "--model: directory not found"),
    (["info", "--model", GPT2, "--r", "0"], "--r"),
    (["info", "--model", GPT2, "--r", "4"], "--method"),
    (["info", "--model", GPT2, "--method", "lora", "--num-virtual-tokens", "5"], "--num-virtual-tokens"),
    (["info", "--model", GPT2, "--method", "lora", "--task", "SEQ_3"], "--task"),
    (["train", GPT2, "--data", "missing.jsonl"], "--data: file not found: missing.jsonl"),
    (["train", "--data", str(DATA_FILE)], "argument model"),
    (["train", GPT2, "--data", str(DATA_FILE), "--learning-rate", "fast"], "--learning-rate"),
    (["train", GPT2, "--data", str(DATA_FILE), "--batch-size", "-1"], "--batch-size"),
    (["generate", "--model", GPT2], "--prompt"),
    (["generate", "--model", GPT2, "--prompt", "hi", "--adapter", "no/such/adapter"], "--adapter: directory not found"),
    (["generate", "--model", GPT2, "--prompt", "hi", "--top-p", "1.5"], "--top-p"),
    (["merge", "--model", GPT2, "--output", "x"], "--adapter"),
    (["merge", "--model", GPT2, "--adapter", str(FIXTURES), "--output", "x"], "--adapter: Can't find 'adapter_config.json'"),
])
def test_bad_arguments_exit_2_naming_the_argument(capsys, argv, names):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert "error:" in err and names in err, err


def test_bad_data_columns_name_the_file_and_the_columns(capsys, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"sentence": "hi", "y": 1}])
    code, _, err = run(capsys, "train", BERT, "--tokenizer", BPE, "--task", "SEQ_CLS", "--data", data)
    assert code == 2 and "--data" in err and "d.jsonl" in err and "text, label" in err


def test_bad_data_file_contents_exit_2(capsys, tmp_path):
    data = tmp_path / "broken.jsonl"
    data.write_text("{not json\n")
    code, _, err = run(capsys, "train", GPT2, "--data", data)
    assert code == 2 and "broken.jsonl" in err and "line 1" in err


def test_labels_that_do_not_fit_the_checkpoint_head_are_a_usage_error(capsys, tmp_path):
    data = write_jsonl(tmp_path / "three.jsonl", [{"text": f"t {i}", "label": i % 3} for i in range(6)])
    code, _, err = run(capsys, "train", BERT, "--tokenizer", BPE, "--data", data)  # the fixture's head has 2
    assert code == 2 and "classifier" in err and "(3,)" in err


def test_missing_tokenizer_is_a_usage_error(capsys, cls_data):
    code, _, err = run(capsys, "train", BERT, "--data", cls_data)  # the bert fixture has no tokenizer.json
    assert code == 2 and "--tokenizer" in err


def test_method_without_a_config_class_is_refused(capsys, monkeypatch):
    from tinypeft.peft import mapping

    monkeypatch.delitem(mapping.PEFT_TYPE_TO_CONFIG_MAPPING, "LORA")
    code, _, err = run(capsys, "info", "--model", GPT2, "--method", "lora")
    assert code == 2 and "--method: lora is not available" in err


# ----------------------------------------------------------------------------- info

def test_info_gpt2(capsys):
    code, out, _ = run(capsys, "info", "--model", GPT2)
    assert code == 0
    assert "model_type: gpt2" in out and "class: GPT2LMHeadModel" in out
    assert "layers: 2" in out and "hidden size: 32" in out
    assert "parameters: 35,584" in out  # the tied lm_head counted once
    assert "(tied" in out


def test_info_trainable_count_matches_peft(capsys):
    """GPT-2 fixture, LoRA r=8 on c_attn: 2 layers x (A [8, 32] + B [96, 8]) = 2,048 (PEFT's count)."""
    code, out, _ = run(capsys, "info", "--model", GPT2, "--method", "lora", "--r", "8", "--target-modules", "c_attn")
    assert code == 0
    assert "trainable params: 2,048 || all params: 37,632 || trainable%: 5.4422" in out


def test_info_builds_without_allocating_weights(capsys, monkeypatch):
    from tinypeft.models import modeling_utils

    def refuse(*a, **k):
        raise AssertionError("info must not load weights")

    monkeypatch.setattr(modeling_utils, "load_checkpoint", refuse)
    code, out, _ = run(capsys, "info", "--model", BERT, "--method", "lora", "--target-modules", "query,value")
    assert code == 0 and "class: BertForSequenceClassification" in out and "trainable params:" in out


# ----------------------------------------------------------------------------- train, generate, merge

def test_train_seq_cls_then_reload_and_merge(capsys, tmp_path, cls_data):
    out_dir = tmp_path / "adapter"
    code, out, err = run(capsys, "train", BERT, "--tokenizer", BPE, "--data", cls_data, "--max-steps", 3,
                         "--batch-size", 4, "--output-dir", out_dir, "--no-progress", "--seed", 1)
    assert code == 0, err
    assert "trainable params:" in out and "over 3 steps" in out
    config = json.loads((out_dir / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["task_type"] == "SEQ_CLS" and config["r"] == 8
    assert (out_dir / "tokenizer.json").is_file()

    # AutoPeftModel passes its other kwargs (num_labels, id2label) to the base model, as PEFT does
    from tinypeft import AutoPeftModelForSequenceClassification, no_grad

    model = AutoPeftModelForSequenceClassification.from_pretrained(out_dir, id2label={0: "neg", 1: "pos"})
    assert model.config.id2label == {0: "neg", 1: "pos"}
    ids = np.array([[5, 6, 7, 8]])
    with no_grad():
        before = model(input_ids=ids).logits.numpy()
    assert before.shape == (1, 2)

    merged_dir = tmp_path / "merged"
    code, out, err = run(capsys, "merge", "--model", BERT, "--adapter", out_dir, "--output", merged_dir)
    assert code == 0, err
    from tinypeft import AutoModelForSequenceClassification

    merged = AutoModelForSequenceClassification.from_pretrained(merged_dir)
    with no_grad():
        np.testing.assert_allclose(merged(input_ids=ids).logits.numpy(), before, atol=1e-5)
    assert json.loads((merged_dir / "config.json").read_text())["architectures"] == ["BertForSequenceClassification"]


def test_train_is_reproducible(capsys, tmp_path, lm_data):
    files = []
    for name in ("a", "b"):
        code, _, err = run(capsys, "train", GPT2, "--data", lm_data, "--max-steps", 2, "--output-dir",
                           tmp_path / name, "--no-progress")
        assert code == 0, err
        files.append((tmp_path / name / "adapter_model.safetensors").read_bytes())
    assert files[0] == files[1]


def test_train_causal_lm_then_generate_and_merge(capsys, tmp_path, lm_data):
    adapter = tmp_path / "adapter"
    code, out, err = run(capsys, "train", "--model", GPT2, "--data", lm_data, "--max-steps", 4, "--r", 4,
                         "--lora-alpha", 8, "--target-modules", "c_attn", "--learning-rate", "0.01",
                         "--output-dir", adapter, "--no-progress")
    assert code == 0, err
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["task_type"] == "CAUSAL_LM" and config["r"] == 4 and config["target_modules"] == ["c_attn"]
    assert config["fan_in_fan_out"] is True  # GPT-2's Conv1D

    code, out, err = run(capsys, "generate", "--model", GPT2, "--adapter", adapter, "--prompt", "Q: 3 plus one?",
                         "--prompt", "hello", "--max-new-tokens", 4)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("Q: 3 plus one?") and lines[1].startswith("hello")

    # greedy generation with the adapter equals greedy generation of the merged model
    merged = tmp_path / "merged"
    code, _, err = run(capsys, "merge", "--model", GPT2, "--adapter", adapter, "--output", merged)
    assert code == 0, err
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in merged.iterdir()}
    code, out_merged, err = run(capsys, "generate", "--model", merged, "--prompt", "Q: 3 plus one?",
                                "--prompt", "hello", "--max-new-tokens", 4)
    assert code == 0, err
    assert out_merged == out

    # sampling is seeded
    sampled = [run(capsys, "generate", "--model", merged, "--prompt", "hi", "--do-sample", "--top-k", 20,
                   "--top-p", 0.9, "--temperature", 1.5, "--seed", 3)[1] for _ in range(2)]
    assert sampled[0] == sampled[1]


def test_train_token_classification(capsys, tmp_path):
    data = write_jsonl(tmp_path / "tok.jsonl", [{"tokens": ["the", "cat", "sat"], "tags": ["O", "ANIMAL", "O"]},
                                                 {"tokens": ["a", "dog", "ran", "home"], "tags": ["O", "ANIMAL", "O", "O"]}])
    code, out, err = run(capsys, "train", BERT, "--task", "TOKEN_CLS", "--tokenizer", BPE, "--data", data,
                         "--max-steps", 2, "--output-dir", tmp_path / "a", "--no-progress")
    assert code == 0, err
    assert json.loads((tmp_path / "a" / "adapter_config.json").read_text())["task_type"] == "TOKEN_CLS"


def test_train_seq2seq_then_generate(capsys, tmp_path):
    t5 = FIXTURES / "models" / "t5"
    data = write_jsonl(tmp_path / "s2s.jsonl", [{"prompt": f"copy {i}", "completion": f"{i}"} for i in range(6)])
    code, _, err = run(capsys, "train", t5, "--tokenizer", BPE, "--data", data, "--max-steps", 2,
                       "--output-dir", tmp_path / "a", "--no-progress")
    assert code == 0, err
    assert json.loads((tmp_path / "a" / "adapter_config.json").read_text())["task_type"] == "SEQ_2_SEQ_LM"
    code, out, err = run(capsys, "generate", "--model", t5, "--adapter", tmp_path / "a", "--prompt", "copy 3",
                         "--max-new-tokens", 3)
    assert code == 0 and out.startswith("copy 3 -> "), err


@pytest.mark.parametrize("method, options", [
    ("ia3", []), ("prompt_tuning", ["--num-virtual-tokens", 4]), ("prefix_tuning", ["--num-virtual-tokens", 4]),
    ("p_tuning", ["--num-virtual-tokens", 4])])
def test_train_other_methods_then_generate(capsys, tmp_path, lm_data, method, options):
    from tinypeft.cli_args import METHODS

    adapter = tmp_path / method
    code, out, err = run(capsys, "train", GPT2, "--method", method, *options, "--data", lm_data, "--max-steps", 2,
                         "--output-dir", adapter, "--no-progress")
    assert code == 0, err
    assert json.loads((adapter / "adapter_config.json").read_text())["peft_type"] == METHODS[method]
    code, out, err = run(capsys, "generate", "--model", GPT2, "--adapter", adapter, "--prompt", "hi",
                         "--max-new-tokens", 3)
    assert code == 0 and out.startswith("hi"), err
    code, _, err = run(capsys, "merge", "--model", GPT2, "--adapter", adapter, "--output", tmp_path / "m")
    if method == "ia3":
        assert code == 0, err
    else:  # virtual tokens are not weights: nothing to merge
        assert code == 2 and "cannot be merged" in err


def test_an_option_of_another_method_is_refused(capsys, lm_data):
    code, _, err = run(capsys, "train", GPT2, "--method", "prefix_tuning", "--r", 4, "--data", lm_data)
    assert code == 2 and "--r: not an option of --method prefix_tuning" in err


@pytest.mark.parity
@pytest.mark.parametrize("task", ["CAUSAL_LM", "SEQ_CLS"])
def test_merged_model_loads_in_transformers_with_the_same_logits(capsys, tmp_path, task, cls_data, lm_data):
    import torch
    import transformers
    from tinypeft import no_grad
    from tinypeft.cli_models import load_with_adapter

    model, data, extra = (GPT2, lm_data, []) if task == "CAUSAL_LM" else (BERT, cls_data, ["--tokenizer", BPE])
    adapter, merged = tmp_path / "adapter", tmp_path / "merged"
    code, _, err = run(capsys, "train", model, *extra, "--data", data, "--max-steps", 3, "--learning-rate", "0.05",
                       "--output-dir", adapter, "--no-progress")
    assert code == 0, err
    assert run(capsys, "merge", "--model", model, "--adapter", adapter, "--output", merged)[0] == 0

    ids = np.array([[5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 15, 16]])
    ours, _ = load_with_adapter(model, adapter)  # tinypeft, adapter not merged
    with no_grad():
        expected = ours(input_ids=ids).logits.numpy()
    auto = transformers.AutoModelForCausalLM if task == "CAUSAL_LM" else transformers.AutoModelForSequenceClassification
    theirs = auto.from_pretrained(str(merged)).eval()
    with torch.no_grad():
        got = theirs(input_ids=torch.tensor(ids)).logits.numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


# ----------------------------------------------------------------------------- the demo

def test_demo_data_file():
    rows = [json.loads(line) for line in DATA_FILE.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 400
    assert all(set(r) == {"text", "label", "split"} for r in rows)
    assert {r["label"] for r in rows} == set(LABELS)
    for split, per_class in (("train", 75), ("test", 25)):
        for label in LABELS:
            assert sum(r["split"] == split and r["label"] == label for r in rows) == per_class
    texts = [r["text"] for r in rows]
    assert len(set(texts)) == len(texts)  # no duplicates, so none shared by the two splits
    train = {r["text"].lower() for r in rows if r["split"] == "train"}
    assert not train & {r["text"].lower() for r in rows if r["split"] == "test"}
    assert all(3 <= len(t.split()) <= 20 for t in texts)

    splits = load_topics()
    assert len(splits["train"]) == 300 and len(splits["test"]) == 100
    assert sorted(set(splits["test"]["label"])) == [0, 1, 2, 3]


def test_demo_data_file_is_what_the_generator_writes():
    from tinypeft.demo.make_topics import build

    assert [json.loads(line) for line in DATA_FILE.read_text(encoding="utf-8").splitlines()] == build()


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    """`tinypeft demo` in a fresh process: fetches MiniLM through pip if absent, then the bars."""
    proc = subprocess.run([sys.executable, "-m", "tinypeft.cli", "demo", "--output-dir", str(tmp_path / "demo"),
                           "--no-progress"], capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    before = float(re.search(r"accuracy BEFORE.*: ([0-9.]+)", proc.stdout).group(1))
    after = float(re.search(r"accuracy AFTER.*: ([0-9.]+)", proc.stdout).group(1))
    assert after >= 0.90, proc.stdout
    assert before < 0.5, proc.stdout  # a fresh head is near chance (0.25)
    for label in LABELS:
        assert re.search(rf"^  {label}\s+\d+\.\d%", proc.stdout, re.M), proc.stdout
    assert (tmp_path / "demo" / "adapter_model.safetensors").is_file()
