"""Real work through the CLI (issue 16): evaluate while training, predict, label names that survive a
reload, a refused `generate` on a classifier, the console output of training."""
import json
from pathlib import Path

import numpy as np
import pytest

from tinypeft.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
GPT2, BERT = str(FIXTURES / "models" / "gpt2"), str(FIXTURES / "models" / "bert")
BPE = str(FIXTURES / "tokenizers" / "bpe")  # the bert fixture has no tokenizer; this one's ids fit its vocab


def run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


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


# ----------------------------------------------------------------------------- friction 5: a silent console

def test_train_with_no_progress_still_prints_the_log_lines(capsys, tmp_path):
    data = write_jsonl(tmp_path / "lm.jsonl", [{"text": f"line number {i}"} for i in range(8)])
    code, out, err = run(capsys, "train", GPT2, "--data", data, "--max-steps", 4, "--batch-size", 2,
                         "--output-dir", tmp_path / "a", "--no-progress")
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("{'loss'")]
    assert len(lines) == 4 and "'grad_norm'" in lines[0] and "'learning_rate'" in lines[0] and "'epoch'" in lines[0]
