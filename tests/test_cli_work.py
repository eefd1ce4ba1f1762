"""Real work through the CLI (issue 16): evaluate while training, predict, label names that survive a
reload, a refused `generate` on a classifier, the console output of training."""
import json
from pathlib import Path

import numpy as np
import pytest

from tinypeft.cli import main
from cli_helpers import run, write_jsonl  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
GPT2, BERT = str(FIXTURES / "models" / "gpt2"), str(FIXTURES / "models" / "bert")
BPE = str(FIXTURES / "tokenizers" / "bpe")  # the bert fixture has no tokenizer; this one's ids fit its vocab


def cls_rows(n, offset=0):
    names = ["sports", "music"]
    return [{"text": f"{names[i % 2]} words {i + offset}", "label": names[i % 2]} for i in range(n)]


@pytest.fixture(scope="module")
def cls_adapter(tmp_path_factory):
    """A 2-class SEQ_CLS adapter trained on the BERT fixture, with string labels."""
    tmp = tmp_path_factory.mktemp("cls")
    data = write_jsonl(tmp / "train.jsonl", cls_rows(12))
    out = tmp / "adapter"
    code = main(["train", BERT, "--tokenizer", BPE, "--data", str(data), "--max-steps", "2", "--batch-size", "4",
                 "--output-dir", str(out), "--no-progress"])
    assert code == 0
    return out


# ----------------------------------------------------------------------------- friction 1: generate on a classifier

def test_generate_with_a_classification_adapter_is_a_one_line_usage_error(capsys, cls_adapter):
    code, out, err = run(capsys, "generate", "--model", BERT, "--tokenizer", BPE, "--adapter", cls_adapter,
                         "--prompt", "hi")
    assert code == 2, err
    assert "SEQ_CLS adapter" in err and "tinypeft predict" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1


def test_generate_on_an_encoder_only_model_is_a_one_line_usage_error(capsys):
    code, out, err = run(capsys, "generate", "--model", BERT, "--tokenizer", BPE, "--prompt", "hi")
    assert code == 2, err
    assert "bert encoder with no language-model head" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- friction 1: evaluate and predict

def test_classification_metrics_against_a_hand_count():
    from tinypeft.cli_metrics import classification_metrics
    from tinypeft.trainer import EvalPrediction

    labels = np.array([0, 0, 1, 1, 2, -100])
    logits = np.eye(3)[[0, 1, 1, 1, 0, 2]]  # predictions 0 1 1 1 0 (the -100 row is skipped)
    m = classification_metrics(EvalPrediction(predictions=logits, label_ids=labels))
    # class 0: tp 1 fp 1 fn 1 -> 0.5; class 1: tp 2 fp 1 fn 0 -> 0.8; class 2: tp 0 -> 0
    assert m["accuracy"] == pytest.approx(3 / 5) and m["f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_train_with_eval_data_prints_accuracy_and_f1_each_epoch(capsys, tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", cls_rows(8))
    held_out = write_jsonl(tmp_path / "eval.jsonl", cls_rows(6, offset=100)[:5])
    code, out, err = run(capsys, "train", BERT, "--tokenizer", BPE, "--data", train, "--eval-data", held_out,
                         "--epochs", 2, "--batch-size", 4, "--output-dir", tmp_path / "a", "--no-progress")
    assert code == 0, err
    evals = [line for line in out.splitlines() if line.startswith("{'eval_loss'")]
    assert len(evals) == 2 and all("'eval_accuracy'" in e and "'eval_f1'" in e for e in evals)
    assert "'epoch': '1.0'" in evals[0] or "'epoch': '1'" in evals[0]


def test_eval_data_label_unknown_to_the_training_data_is_a_usage_error(capsys, tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", cls_rows(4))
    held_out = write_jsonl(tmp_path / "eval.jsonl", [{"text": "x", "label": "cooking"}])
    code, _, err = run(capsys, "train", BERT, "--tokenizer", BPE, "--data", train, "--eval-data", held_out,
                       "--max-steps", 1, "--output-dir", tmp_path / "a", "--no-progress")
    assert code == 2 and "--eval-data" in err and "'cooking' is not one of the training data's" in err


def test_train_causal_lm_with_eval_data_prints_perplexity(capsys, tmp_path):
    data = write_jsonl(tmp_path / "lm.jsonl", [{"text": f"line number {i}"} for i in range(4)])
    code, out, err = run(capsys, "train", GPT2, "--data", data, "--eval-data", data, "--epochs", 1,
                         "--batch-size", 2, "--output-dir", tmp_path / "a", "--no-progress")
    assert code == 0, err
    evals = [eval(line) for line in out.splitlines() if line.startswith("{'eval_loss'")]
    assert len(evals) == 1
    assert float(evals[0]["eval_perplexity"]) == pytest.approx(np.exp(float(evals[0]["eval_loss"])), rel=1e-3)


def test_predict_classification_writes_label_names_and_scores(capsys, tmp_path, cls_adapter):
    from tinypeft import AutoModelForSequenceClassification, no_grad
    from tinypeft.peft import PeftModel
    from tinypeft.tokenization import AutoTokenizer

    data = write_jsonl(tmp_path / "in.jsonl", [{"text": "sports words 7", "label": "sports"}, {"text": "music 3"}])
    out_file = tmp_path / "out.jsonl"
    code, out, err = run(capsys, "predict", "--model", BERT, "--adapter", cls_adapter, "--data", data,
                         "--output", out_file)
    assert code == 0, err
    rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert len(rows) == 2 and rows[0]["expected_label"] == "sports" and rows[1]["text"] == "music 3"
    # the score is the softmax probability of the argmax class of the model with the adapter, one row at a time
    tok = AutoTokenizer.from_pretrained(cls_adapter)
    model = PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(BERT), cls_adapter).eval()
    for row in rows:
        with no_grad():
            logits = model(**tok([row["text"]], return_tensors="np")).logits.numpy()[0]
        p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        assert row["score"] == pytest.approx(p.max(), abs=1e-5)
        assert row["label"] == model.config.id2label[int(p.argmax())]


def test_predict_causal_lm_writes_the_generations(capsys, tmp_path):
    data = write_jsonl(tmp_path / "lm.jsonl", [{"prompt": f"Q: {i}?", "completion": f" A {i}"} for i in range(4)])
    adapter = tmp_path / "a"
    assert run(capsys, "train", GPT2, "--data", data, "--max-steps", 1, "--output-dir", adapter, "--no-progress")[0] == 0
    code, out, err = run(capsys, "predict", "--model", GPT2, "--adapter", adapter, "--data", data,
                         "--output", tmp_path / "out.jsonl", "--max-new-tokens", 3)
    assert code == 0, err
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    code, gen, err = run(capsys, "generate", "--model", GPT2, "--adapter", adapter, "--prompt", "Q: 0?",
                         "--max-new-tokens", 3)
    assert len(rows) == 4 and gen.rstrip("\n") == "Q: 0?" + rows[0]["generation"]


# ----------------------------------------------------------------------------- friction 2: a flat loss

def test_a_loss_that_barely_moved_is_warned_about(capsys, tmp_path):
    data = write_jsonl(tmp_path / "lm.jsonl", [{"text": f"line number {i}"} for i in range(8)])
    code, _, err = run(capsys, "train", GPT2, "--data", data, "--max-steps", 4, "--learning-rate", "1e-9",
                       "--output-dir", tmp_path / "a", "--no-progress")
    assert code == 0 and "warning: the loss barely moved" in err
    code, _, err = run(capsys, "train", GPT2, "--data", data, "--max-steps", 12, "--learning-rate", "0.05",
                       "--batch-size", 8, "--output-dir", tmp_path / "b", "--no-progress")
    assert code == 0 and "barely moved" not in err


# ----------------------------------------------------------------------------- friction 3: label names

def test_label_names_and_count_are_saved_with_the_adapter_and_restored(capsys, tmp_path):
    from tinypeft import AutoPeftModelForSequenceClassification

    base = FIXTURES / "models" / "bert-base"  # no classifier in the checkpoint, as all-MiniLM-L6-v2
    rows = [{"text": f"{name} words {i}", "label": name} for i in range(4) for name in ("sports", "cooking", "music")]
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    out_dir = tmp_path / "adapter"
    code, _, err = run(capsys, "train", base, "--tokenizer", BPE, "--data", data, "--max-steps", 1,
                       "--output-dir", out_dir, "--no-progress")
    assert code == 0, err
    saved = json.loads((out_dir / "config.json").read_text())
    assert saved["id2label"] == {"0": "cooking", "1": "music", "2": "sports"}

    model = AutoPeftModelForSequenceClassification.from_pretrained(out_dir)  # no num_labels needed
    assert model.config.num_labels == 3
    assert model.config.id2label == {0: "cooking", 1: "music", 2: "sports"}
    assert model.config.label2id == {"cooking": 0, "music": 1, "sports": 2}

    code, _, err = run(capsys, "predict", "--model", base, "--adapter", out_dir, "--data", data,
                       "--output", tmp_path / "p.jsonl")
    assert code == 0, err
    assert {json.loads(line)["label"] for line in (tmp_path / "p.jsonl").read_text().splitlines()} <= {
        "cooking", "music", "sports"}


def test_names_given_by_the_caller_win_over_the_saved_ones(cls_adapter):
    from tinypeft import AutoPeftModelForSequenceClassification

    model = AutoPeftModelForSequenceClassification.from_pretrained(cls_adapter, id2label={0: "a", 1: "b"})
    assert model.config.id2label == {0: "a", 1: "b"}


# ----------------------------------------------------------------------------- friction 5: a silent console

def test_train_with_no_progress_still_prints_the_log_lines(capsys, tmp_path):
    data = write_jsonl(tmp_path / "lm.jsonl", [{"text": f"line number {i}"} for i in range(8)])
    code, out, err = run(capsys, "train", GPT2, "--data", data, "--max-steps", 4, "--batch-size", 2,
                         "--output-dir", tmp_path / "a", "--no-progress")
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("{'loss'")]
    assert len(lines) == 4 and "'grad_norm'" in lines[0] and "'learning_rate'" in lines[0] and "'epoch'" in lines[0]


# ----------------------------------------------------------------------------- frictions 6 and 7: the task

def test_text_and_label_columns_on_gpt2_train_a_classifier_announced_with_batches_above_one(capsys, tmp_path):
    data = write_jsonl(tmp_path / "cls.jsonl", cls_rows(8))
    out_dir = tmp_path / "a"
    code, out, err = run(capsys, "train", GPT2, "--data", data, "--max-steps", 2, "--batch-size", 4,
                         "--output-dir", out_dir, "--no-progress")
    assert code == 0, err
    assert f"task: SEQ_CLS (from the columns text, label of {data}" in out
    assert json.loads((out_dir / "adapter_config.json").read_text())["task_type"] == "SEQ_CLS"
    code, _, err = run(capsys, "predict", "--model", GPT2, "--adapter", out_dir, "--data", data,
                       "--output", tmp_path / "p.jsonl", "--batch-size", 4)
    assert code == 0, err
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 8


def test_gpt2_with_task_seq_cls_gets_the_pad_token_from_the_tokenizer(capsys, tmp_path):
    import shutil

    gpt2 = tmp_path / "gpt2"  # as the real gpt2: no pad_token_id in config.json
    shutil.copytree(GPT2, gpt2)
    config = json.loads((gpt2 / "config.json").read_text())
    del config["pad_token_id"]
    (gpt2 / "config.json").write_text(json.dumps(config))
    data = write_jsonl(tmp_path / "cls.jsonl", cls_rows(8))
    code, out, err = run(capsys, "train", gpt2, "--task", "SEQ_CLS", "--data", data, "--max-steps", 1,
                         "--batch-size", 4, "--output-dir", tmp_path / "a", "--no-progress")
    assert code == 0, err
    assert "task:" not in out  # chosen, not inferred
    code, _, err = run(capsys, "predict", "--model", gpt2, "--adapter", tmp_path / "a", "--data", data,
                       "--output", tmp_path / "p.jsonl", "--batch-size", 4)
    assert code == 0, err


def test_language_model_columns_on_an_encoder_are_refused(capsys, tmp_path):
    data = write_jsonl(tmp_path / "lm.jsonl", [{"prompt": "a", "completion": "b"}])
    code, _, err = run(capsys, "train", BERT, "--tokenizer", BPE, "--data", data, "--output-dir", tmp_path / "a")
    assert code == 2 and "columns prompt, completion are for a language model" in err


# ----------------------------------------------------------------------------- chat: generate --chat, demo --task chat

TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def test_generate_chat_applies_the_chat_template(capsys, tmp_path):
    import shutil

    from tinypeft.models import AutoModelForCausalLM
    from tinypeft.tokenization import AutoTokenizer

    llama = tmp_path / "llama"
    shutil.copytree(FIXTURES / "models" / "llama", llama)
    config = json.loads((llama / "tokenizer_config.json").read_text())
    config["chat_template"] = TEMPLATE
    (llama / "tokenizer_config.json").write_text(json.dumps(config))
    code, out, err = run(capsys, "generate", "--model", llama, "--chat", "--prompt", "hello", "--max-new-tokens", 4)
    assert code == 0, err
    tok = AutoTokenizer.from_pretrained(llama)
    full = tok.apply_chat_template([{"role": "user", "content": "hello"}], add_generation_prompt=True,
                                   return_dict=True, return_tensors="np")["input_ids"]
    assert "<|user|>hello" in tok.decode(full[0]) and tok.decode(full[0]).endswith("<|assistant|>")
    model = AutoModelForCausalLM.from_pretrained(llama)
    new = model.generate(input_ids=full, max_new_tokens=4, do_sample=False).numpy()[0][full.shape[1]:]
    assert out.strip() == tok.decode(new, skip_special_tokens=True).strip()


def test_generate_chat_without_a_template_is_a_usage_error(capsys):
    code, _, err = run(capsys, "generate", "--model", GPT2, "--chat", "--prompt", "hello")
    assert code == 2 and "--chat: the tokenizer has no chat template" in err


def test_demo_task_chat_runs_the_chat_demo(capsys, tmp_path, monkeypatch):
    from tinypeft.demo import chat

    calls = []
    monkeypatch.setattr(chat, "run_chat_demo", lambda **kw: calls.append(kw))
    code, _, err = run(capsys, "demo", "--task", "chat", "--output-dir", tmp_path / "c", "--learning-rate", 0.01)
    assert code == 0, err
    assert calls == [{"output_dir": str(tmp_path / "c"), "model": None, "seed": 0, "learning_rate": 0.01}]
    code, _, err = run(capsys, "demo", "--task", "chat", "--epochs", 2)
    assert code == 2 and "--epochs" in err


# ----------------------------------------------------------------------------- friction 8: --help and --version

def test_train_and_info_print_where_the_model_came_from(capsys, tmp_path):
    code, out, err = run(capsys, "info", "--model", GPT2)
    assert code == 0 and out.startswith(f"model: {GPT2} from {Path(GPT2).resolve()}\n")
    data = write_jsonl(tmp_path / "lm.jsonl", [{"text": "a b c"}])
    code, out, err = run(capsys, "train", GPT2, "--data", data, "--max-steps", 1, "--output-dir", tmp_path / "a",
                         "--no-progress")
    assert code == 0 and out.startswith(f"model: {GPT2} from ")


def test_version(capsys):
    import tinypeft

    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"tinypeft {tinypeft.__version__}"


def test_every_command_has_a_description_and_every_default_is_shown_once():
    import argparse

    from tinypeft.cli import build_parser

    parser = build_parser()
    for name, sub in parser.commands.items():
        assert sub.description, f"`tinypeft {name}` has no description"
        for action in sub._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction)) or not action.option_strings:
                continue
            text = (sub.formatter_class(prog="x")._get_help_string(action) or "").replace(
                "%(default)s", str(action.default))
            flag = f"tinypeft {name} {action.option_strings[-1]}"
            assert action.help, f"{flag} has no help"
            assert text.count("default") <= 1, f"{flag}: {text!r}"
            assert "(default: None)" not in text and "(default: False)" not in text, flag
            if action.default not in (None, False) and not action.required:
                assert "default" in text, f"{flag} does not show its default {action.default!r}"
