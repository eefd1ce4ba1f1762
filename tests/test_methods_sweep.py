"""Tutorial 08's method comparison (tinypeft/course/methods_sweep.py) and the results file it committed.

The sweep itself takes tens of minutes; the slow test reruns a reduced one and compares with the file.
"""
import json

import pytest

from tinypeft.course import methods_sweep, path
from tinypeft.demo import load_topics


def _run(method, lr, seed, valid, test):
    return {"method": method, "learning_rate": lr, "seed": seed, "trainable": 10, "valid_accuracy": valid,
            "test_accuracy": test, "train_seconds": 1.0}


def test_the_learning_rate_is_chosen_on_validation_never_on_test():
    runs = [_run("m", 0.1, s, valid=0.9, test=0.5) for s in range(3)]  # best on validation
    runs += [_run("m", 0.01, s, valid=0.8, test=0.99) for s in range(3)]  # best on test: must not be picked
    summary = methods_sweep.summarize(runs)["m"]
    assert summary["best_learning_rate"] == 0.1
    assert summary["test_mean"] == pytest.approx(0.5) and summary["n"] == 3
    assert summary["test_std"] == pytest.approx(0.0)


def test_the_spread_is_the_sample_standard_deviation_over_seeds():
    runs = [_run("m", 0.1, s, valid=0.9, test=t) for s, t in enumerate([0.8, 0.9, 1.0])]
    assert methods_sweep.summarize(runs)["m"]["test_std"] == pytest.approx(0.1)  # ddof = 1


def test_few_shot_split_draws_four_per_topic_and_validates_on_the_rest():
    topics = load_topics()  # the raw sentences: the split needs only the labels
    train, valid = methods_sweep.few_shot_split(topics, seed=3)
    labels = sorted(r["label"] for r in train)
    assert labels == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4 and len(valid) == len(topics["train"]) - 16
    again, _ = methods_sweep.few_shot_split(topics, seed=3)
    other, _ = methods_sweep.few_shot_split(topics, seed=4)
    assert list(again) == list(train) and list(other) != list(train)


def test_the_committed_results_are_what_their_runs_say():
    """The summary in the file is recomputed from its runs (no number edited by hand), over >= 3 rates and the
    method's seeds (SEEDS for the first six, LATER_SEEDS for the later ones)."""
    with open(path(methods_sweep.RESULTS)) as f:
        results = json.load(f)
    assert results["commands"] and results["machine"]["cpu_count"] >= 1
    assert json.loads(json.dumps(methods_sweep.summarize(results["runs"]))) == results["summary"]
    assert set(results["summary"]) == set(methods_sweep.METHODS)
    for method, row in results["summary"].items():
        assert len(row["by_learning_rate"]) >= 3, method
        seeds = methods_sweep.LATER_SEEDS if method in methods_sweep.LATER_METHODS else methods_sweep.SEEDS
        assert all(g["n"] >= len(seeds) for g in row["by_learning_rate"].values()), method


@pytest.mark.slow
def test_a_reduced_sweep_reproduces_the_committed_runs(tmp_path):
    with open(path(methods_sweep.RESULTS)) as f:
        recorded = {(r["method"], r["learning_rate"], r["seed"]): r for r in json.load(f)["runs"]}
    out = tmp_path / "sweep.json"
    lr = 0.03
    rerun = methods_sweep.main(["--methods", "head only", "IA3", "--seeds", "0", "1", "--learning-rates", str(lr),
                                "--out", str(out)])
    assert json.loads(out.read_text())["runs"] == rerun["runs"]
    for run in rerun["runs"]:
        want = recorded[(run["method"], lr, run["seed"])]
        assert run["trainable"] == want["trainable"]
        # the same code and data; the last digit of a sum may differ with the BLAS library and its threads
        assert abs(run["test_accuracy"] - want["test_accuracy"]) <= 0.02, run
        assert abs(run["valid_accuracy"] - want["valid_accuracy"]) <= 0.02, run
