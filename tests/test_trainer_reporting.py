"""Where a run reports (issue 16): report_to as transformers reads it ("none", "all", a name, a list),
TensorBoard scalars through tensorboardX, the loss-curve PNG announced; and the arguments that pick what is
kept: eval_steps, metric_for_best_model with greater_is_better, gradient_checkpointing."""
import struct
from pathlib import Path

import numpy as np
import pytest

from tinypeft.data import DataCollatorForLanguageModeling, Dataset
from tinypeft.models import AutoModelForCausalLM
from tinypeft.tokenization import AutoTokenizer
from tinypeft.trainer import PredictionOutput, Trainer, TrainingArguments
from tinypeft.trainer import training_args

GPT2 = Path(__file__).parent / "fixtures" / "models" / "gpt2"


def lm_trainer(tmp_path, **kwargs):
    tok = AutoTokenizer.from_pretrained(GPT2)
    data = Dataset.from_list([{"text": t} for t in ("one two", "three four five", "six", "seven eight")]).map(
        lambda ex: tok(ex["text"]), remove_columns=["text"])
    args = dict(output_dir=str(tmp_path / "out"), max_steps=4, per_device_train_batch_size=2, save_strategy="no",
                disable_tqdm=True, learning_rate=0.1, logging_steps=1)
    return Trainer(AutoModelForCausalLM.from_pretrained(GPT2), TrainingArguments(**{**args, **kwargs}),
                   train_dataset=data, eval_dataset=data, data_collator=DataCollatorForLanguageModeling(tok, mlm=False))


# ----------------------------------------------------------------------------- report_to

@pytest.mark.parametrize("value,expected", [("none", []), (None, []), (["none"], []), ("jsonl", ["jsonl"]),
                                            (["jsonl", "jsonl"], ["jsonl"])])
def test_report_to_is_read_as_transformers_reads_it(value, expected):
    assert TrainingArguments(report_to=value).report_to == expected


def test_report_to_all_means_every_installed_integration(monkeypatch):
    monkeypatch.setattr(training_args, "tensorboard_available", lambda: False)
    assert TrainingArguments(report_to="all").report_to == ["jsonl"]
    monkeypatch.setattr(training_args, "tensorboard_available", lambda: True)
    assert TrainingArguments(report_to=["all"]).report_to == ["jsonl", "tensorboard"]


@pytest.mark.parametrize("value", ["wandb", ["jsonl", "mlflow"], ["none", "jsonl"], 3])
def test_an_unknown_integration_is_refused_naming_those_there_are(value):
    with pytest.raises(ValueError, match="report_to="):
        TrainingArguments(report_to=value)


def test_tensorboard_without_tensorboardx_names_the_package_to_install(monkeypatch):
    monkeypatch.setattr(training_args, "tensorboard_available", lambda: False)
    with pytest.raises(ImportError, match="pip install tensorboardX"):
        TrainingArguments(report_to="tensorboard")


def read_scalars(folder):
    """{tag: [(step, value)]} from the TFRecord event files under folder (length, crc, Event proto, crc)."""
    from tensorboardX.proto.event_pb2 import Event

    scalars = {}
    for file in sorted(Path(folder).rglob("events.out.tfevents.*")):
        data, at = file.read_bytes(), 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at:at + 8])
            event = Event.FromString(data[at + 12:at + 12 + length])
            at += 12 + length + 4
            for v in event.summary.value:
                scalars.setdefault(v.tag, []).append((event.step, v.simple_value))
    return scalars


def test_tensorboard_gets_each_logged_number_at_its_step(tmp_path):
    pytest.importorskip("tensorboardX")  # an optional extra (pip install 'tinypeft[tensorboard]')
    trainer = lm_trainer(tmp_path, report_to="tensorboard", logging_dir=str(tmp_path / "tb"),
                         eval_strategy="steps", eval_steps=2)
    trainer.train()
    scalars = read_scalars(tmp_path / "tb")
    logged = [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e]
    assert [s for s, _ in scalars["train/loss"]] == [s for s, _ in logged] == [1, 2, 3, 4]
    np.testing.assert_allclose([v for _, v in scalars["train/loss"]], [v for _, v in logged], rtol=1e-6)
    evals = [(e["step"], e["eval_loss"]) for e in trainer.state.log_history if "eval_loss" in e]
    assert [s for s, _ in scalars["eval/loss"]] == [s for s, _ in evals] == [2, 4]
    assert "train/learning_rate" in scalars and "train/grad_norm" in scalars and "train/train_loss" in scalars


def test_tensorboard_default_folder_is_output_dir_runs(tmp_path, monkeypatch):
    pytest.importorskip("tensorboardX")
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    lm_trainer(tmp_path, report_to="tensorboard", max_steps=1).train()
    runs = list((tmp_path / "out" / "runs").iterdir())
    assert len(runs) == 1 and read_scalars(runs[0])["train/loss"]


# ----------------------------------------------------------------------------- the loss curve

def test_the_loss_curve_is_announced_where_it_was_written(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    lm_trainer(tmp_path).train()
    path = tmp_path / "out" / "loss_curve.png"
    assert f"loss curve written to {path}" in capsys.readouterr().out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary file left


# ----------------------------------------------------------------------------- what is kept

def test_eval_steps_is_its_own_interval(tmp_path):
    trainer = lm_trainer(tmp_path, max_steps=6, logging_steps=1, eval_strategy="steps", eval_steps=3)
    trainer.train()
    assert [e["step"] for e in trainer.state.log_history if "eval_loss" in e] == [3, 6]
    assert [e["step"] for e in trainer.state.log_history if "loss" in e] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("greater,best_step", [(True, 4), (False, 2)])
def test_greater_is_better_picks_the_best_checkpoint(tmp_path, greater, best_step):
    trainer = lm_trainer(tmp_path, max_steps=6, save_strategy="steps", save_steps=2, eval_strategy="steps",
                         eval_steps=2, metric_for_best_model="accuracy", greater_is_better=greater,
                         save_total_limit=1)
    scores = iter([0.5, 0.9, 0.7])  # at steps 2, 4, 6
    trainer.evaluation_loop = lambda dataset, prefix: PredictionOutput(None, None, {"eval_accuracy": next(scores)})
    trainer.train()
    assert trainer.state.best_model_checkpoint.endswith(f"checkpoint-{best_step}")
    assert trainer.state.best_metric == {2: 0.5, 4: 0.9}[best_step]
    kept = sorted(p.name for p in (tmp_path / "out").iterdir() if p.name.startswith("checkpoint-"))
    assert kept == sorted({f"checkpoint-{best_step}", "checkpoint-6"})  # the limit never deletes the best


def test_accuracy_defaults_to_greater_is_better_and_loss_to_lower():
    assert TrainingArguments(metric_for_best_model="accuracy").greater_is_better is True
    assert TrainingArguments(metric_for_best_model="eval_loss").greater_is_better is False


def test_gradient_checkpointing_trains_to_the_same_weights(tmp_path):
    runs = []
    for checkpointing in (False, True):
        trainer = lm_trainer(tmp_path / str(checkpointing), gradient_checkpointing=checkpointing, seed=3)
        trainer.model.train()  # dropout on: the recomputation must replay the same masks
        trainer.train()
        assert trainer.model.is_gradient_checkpointing == checkpointing
        runs.append({n: p.data.copy() for n, p in trainer.model.named_parameters()})
    for name in runs[0]:
        np.testing.assert_allclose(runs[1][name], runs[0][name], rtol=1e-5, atol=1e-6, err_msg=name)
