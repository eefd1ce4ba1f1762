"""`tinypeft evaluate` (issue 16): metrics of a saved adapter on a labelled file, the same numbers
`train --eval-data` prints and `predict` implies."""
import ast
import json
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import run, write_jsonl  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
GPT2 = str(FIXTURES / "models" / "gpt2")
BPE = str(FIXTURES / "tokenizers" / "bpe")


def cls_rows(n, offset=0):
    names = ["sports", "music", "cooking"]
    return [{"text": f"{names[i % 3]} words {i + offset}", "label": names[i % 3]} for i in range(n)]


def test_evaluate_classification_agrees_with_predict_and_writes_json(capsys, caplog, tmp_path):
    base = FIXTURES / "models" / "bert-base"
    train = write_jsonl(tmp_path / "train.jsonl", cls_rows(12))
    held_out = write_jsonl(tmp_path / "test.jsonl", cls_rows(9, offset=50))
    adapter = tmp_path / "adapter"
    code, _, err = run(capsys, "train", base, "--tokenizer", BPE, "--data", train, "--max-steps", 3,
                       "--learning-rate", "0.01", "--output-dir", adapter, "--no-progress")
    assert code == 0, err
    caplog.clear()  # training did put a new head on the base, and said so
    code, out, err = run(capsys, "evaluate", "--model", base, "--adapter", adapter, "--data", held_out,
                         "--output", tmp_path / "metrics.json")
    assert code == 0, err
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert set(written) >= {"eval_loss", "eval_accuracy", "eval_f1"}
    assert f"metrics written to {tmp_path / 'metrics.json'}" in out
    # the adapter holds the trained classifier: loading the base for it warns of no "newly initialized" head
    assert "newly initialized" not in err + caplog.text

    # the accuracy is the share of predict's labels that match the file's, and macro-F1 counted by hand
    code, _, err = run(capsys, "predict", "--model", base, "--adapter", adapter, "--data", held_out,
                       "--output", tmp_path / "p.jsonl")
    assert code == 0, err
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    hits = [r["label"] == r["expected_label"] for r in rows]
    assert written["eval_accuracy"] == pytest.approx(np.mean(hits))
    f1s = []
    for c in {r["label"] for r in rows} | {r["expected_label"] for r in rows}:
        tp = sum(r["label"] == c == r["expected_label"] for r in rows)
        fp = sum(r["label"] == c != r["expected_label"] for r in rows)
        fn = sum(r["expected_label"] == c != r["label"] for r in rows)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    assert written["eval_f1"] == pytest.approx(np.mean(f1s))


def test_evaluate_lm_gives_the_last_eval_of_training_and_its_perplexity(capsys, tmp_path):
    data = write_jsonl(tmp_path / "lm.jsonl", [{"text": f"line number {i}"} for i in range(6)])
    adapter = tmp_path / "a"
    code, out, err = run(capsys, "train", GPT2, "--data", data, "--eval-data", data, "--epochs", 1,
                         "--batch-size", 3, "--learning-rate", "0.01", "--output-dir", adapter, "--no-progress")
    assert code == 0, err
    last_eval = [ast.literal_eval(line) for line in out.splitlines() if line.startswith("{'eval_loss'")][-1]
    code, out, err = run(capsys, "evaluate", "--model", GPT2, "--adapter", adapter, "--data", data)
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["eval_loss"] == pytest.approx(float(last_eval["eval_loss"]), rel=1e-3)  # printed to 4 digits
    assert metrics["eval_perplexity"] == pytest.approx(np.exp(metrics["eval_loss"]))
    assert "eval_accuracy" not in metrics


def test_evaluate_without_adapter_scores_the_model_alone(capsys, tmp_path):
    data = write_jsonl(tmp_path / "lm.jsonl", [{"text": f"line number {i}"} for i in range(3)])
    code, out, err = run(capsys, "evaluate", "--model", GPT2, "--data", data)
    assert code == 0, err
    assert json.loads(out)["eval_perplexity"] > 1


@pytest.mark.parametrize("extra,message", [
    (["--task", "SEQ_CLS"], "--task: the adapter's task_type decides"),
    (["--output", "."], "--output: . is a folder"),
])
def test_evaluate_usage_errors_are_one_line(capsys, tmp_path, extra, message):
    data = write_jsonl(tmp_path / "lm.jsonl", [{"text": "a b c"}])
    adapter = tmp_path / "a"
    assert run(capsys, "train", GPT2, "--data", data, "--max-steps", 1, "--output-dir", adapter, "--no-progress")[0] == 0
    code, _, err = run(capsys, "evaluate", "--model", GPT2, "--adapter", adapter, "--data", data, *extra)
    assert code == 2 and message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1


def test_evaluate_with_a_label_the_adapter_never_saw_is_a_usage_error(capsys, tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", cls_rows(6))
    adapter = tmp_path / "a"
    base = FIXTURES / "models" / "bert-base"
    assert run(capsys, "train", base, "--tokenizer", BPE, "--data", train, "--max-steps", 1,
               "--output-dir", adapter, "--no-progress")[0] == 0
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"text": "x", "label": "gardening"}])
    code, _, err = run(capsys, "evaluate", "--model", base, "--adapter", adapter, "--data", bad)
    assert code == 2 and "--data" in err and "'gardening' is not one of" in err
