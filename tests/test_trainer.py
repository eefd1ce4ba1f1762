"""Trainer and TrainingArguments on the tiny fixture models: learning, exact resume, NaN stops, rotation,
evaluation with metrics, and argument checks."""
import json
from pathlib import Path

import numpy as np
import pytest

from tinypeft import nn
from tinypeft.data import DataCollatorForLanguageModeling, DataCollatorWithPadding, Dataset
from tinypeft.models import AutoModelForCausalLM, AutoModelForSequenceClassification, ModelOutput
from tinypeft.tokenization import AutoTokenizer
from tinypeft.trainer import EvalPrediction, NonFiniteLossError, Trainer, TrainingArguments
from tinypeft.trainer.optimization import decay_parameter_names

FIXTURES = Path(__file__).parent / "fixtures"
GPT2 = FIXTURES / "models" / "gpt2"
BERT = FIXTURES / "models" / "bert"
TEXTS = ["the cat sat on the mat", "a dog ran in the park", "hello world again", "the sun is bright today",
         "we like small models", "numpy all the way down", "one two three four", "fine tune me"]


@pytest.fixture(scope="module")
def tok():
    return AutoTokenizer.from_pretrained(GPT2)


@pytest.fixture(scope="module")
def lm_data(tok):
    return Dataset.from_list([{"text": t} for t in TEXTS]).map(lambda ex: tok(ex["text"]), remove_columns=["text"])


def lm_trainer(tok, data, output_dir, **kwargs):
    args = dict(output_dir=str(output_dir), learning_rate=1e-2, per_device_train_batch_size=2, logging_steps=1,
                save_steps=3, disable_tqdm=True)
    args.update(kwargs)
    model = AutoModelForCausalLM.from_pretrained(GPT2)
    return Trainer(model, TrainingArguments(**args), train_dataset=data, eval_dataset=data,
                   data_collator=DataCollatorForLanguageModeling(tok, mlm=False))


def losses(trainer):
    return [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e]


def params(model):
    return {n: p.data.copy() for n, p in model.named_parameters()}


# -- learning -------------------------------------------------------------------------------------------------
def test_causal_lm_loss_goes_down(tok, lm_data, tmp_path):
    trainer = lm_trainer(tok, lm_data, tmp_path, max_steps=12, save_strategy="no")
    before = trainer.evaluate()["eval_loss"]
    out = trainer.train()
    after = trainer.evaluate()["eval_loss"]
    assert out.global_step == 12 and after < before - 1.0
    assert trainer.model.training  # left in train mode, as transformers leaves it


def test_bert_classification_learns_and_computes_metrics(tok, tmp_path):
    # the BERT fixture has no tokenizer; the BPE ids fit its 512-word vocabulary and pad id 1
    rows = [{**tok(t), "label": int("the" in t.split())} for t in TEXTS]
    data = Dataset.from_list(rows)

    def accuracy(p):
        assert isinstance(p, EvalPrediction) and p.predictions.shape == (len(rows), 2)
        return {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())}

    model = AutoModelForSequenceClassification.from_pretrained(BERT)
    args = TrainingArguments(str(tmp_path), learning_rate=5e-3, num_train_epochs=8, per_device_train_batch_size=4,
                             per_device_eval_batch_size=3, save_strategy="no", logging_steps=2, disable_tqdm=True)
    trainer = Trainer(model, args, train_dataset=data, eval_dataset=data, processing_class=tok,
                      compute_metrics=accuracy)
    assert isinstance(trainer.data_collator, DataCollatorWithPadding)  # the default with a tokenizer
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()
    assert after["eval_loss"] < before["eval_loss"] and after["eval_accuracy"] == 1.0
    prediction = trainer.predict(data)
    assert prediction.predictions.shape == (8, 2) and prediction.label_ids.tolist() == [r["label"] for r in rows]
    assert prediction.metrics["test_accuracy"] == 1.0 and "test_loss" in prediction.metrics


def test_eval_pads_per_token_outputs_across_batches(tok, lm_data, tmp_path):
    trainer = lm_trainer(tok, lm_data, tmp_path, per_device_eval_batch_size=3)
    out = trainer.predict(lm_data)
    lengths = [len(r["input_ids"]) for r in lm_data]
    assert out.predictions.shape == (8, max(lengths), 512)
    for i, n in enumerate(lengths):  # beyond each row's batch length: -100, as transformers pads
        batch_len = max(lengths[i // 3 * 3: i // 3 * 3 + 3])
        assert (out.label_ids[i, batch_len:] == -100).all()
        assert out.label_ids[i, :n].tolist() == lm_data[i]["input_ids"]


def test_weight_decay_spares_biases_and_layernorms():
    model = AutoModelForCausalLM.from_pretrained(GPT2)
    decay = decay_parameter_names(model)
    assert "transformer.h.0.attn.c_attn.weight" in decay and "transformer.wte.weight" in decay
    assert not any(n.endswith("bias") or ".ln_" in n for n in decay)


def test_only_trainable_parameters_are_optimized_and_change(tok, lm_data, tmp_path):
    trainer = lm_trainer(tok, lm_data, tmp_path, max_steps=2, save_strategy="no")
    model = trainer.model
    model.requires_grad_(False)
    model.transformer.ln_f.weight.requires_grad_(True)
    start = params(model)
    trainer.train()
    optimized = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert optimized == {id(model.transformer.ln_f.weight)}
    changed = [n for n, p in model.named_parameters() if not np.array_equal(p.data, start[n])]
    assert changed == ["transformer.ln_f.weight"]


# -- checkpoints and resume -----------------------------------------------------------------------------------
def test_resume_gives_exactly_the_same_losses_and_weights(tok, lm_data, tmp_path):
    # dropout is on (p=0.1), accumulation spans batches and the schedule warms up: all of it must replay
    kwargs = dict(max_steps=6, gradient_accumulation_steps=2, warmup_steps=2, weight_decay=0.1, report_to="jsonl")
    straight = lm_trainer(tok, lm_data, tmp_path / "straight", **kwargs)
    straight.train()
    assert (tmp_path / "straight" / "checkpoint-3").is_dir()

    resumed = lm_trainer(tok, lm_data, tmp_path / "resumed", **kwargs)
    out = resumed.train(resume_from_checkpoint=str(tmp_path / "straight" / "checkpoint-3"))
    assert losses(resumed) == losses(straight) and len(losses(straight)) == 6
    final_straight, final_resumed = params(straight.model), params(resumed.model)
    for name in final_straight:
        np.testing.assert_array_equal(final_resumed[name], final_straight[name], err_msg=name)
    assert out.global_step == 6 and out.training_loss == pytest.approx(np.mean([l for _, l in losses(straight)]))
    log = [json.loads(line) for line in (tmp_path / "resumed" / "trainer_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if "loss" in e] == [4, 5, 6]  # the resumed part; steps 1-3 are in the checkpoint


def test_interrupted_run_resumes_from_the_latest_checkpoint(tok, lm_data, tmp_path):
    straight = lm_trainer(tok, lm_data, tmp_path / "straight", max_steps=6, logging_steps=2)
    straight.train()

    interrupted = lm_trainer(tok, lm_data, tmp_path / "run", max_steps=6, logging_steps=2)
    forward = interrupted.model.forward
    calls = []

    def crash_on_step_5(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return forward(*args, **kwargs)

    interrupted.model.forward = crash_on_step_5
    with pytest.raises(KeyboardInterrupt):
        interrupted.train()
    assert [p.name for p in (tmp_path / "run").iterdir() if not p.name.startswith(".")] == ["checkpoint-3"]

    again = lm_trainer(tok, lm_data, tmp_path / "run", max_steps=6, logging_steps=2)
    again.train(resume_from_checkpoint=True)
    assert losses(again) == losses(straight)  # the window 3-4 straddles the checkpoint and still matches


def test_checkpoint_contents_and_rotation(tok, lm_data, tmp_path):
    trainer = lm_trainer(tok, lm_data, tmp_path, max_steps=8, save_steps=2, save_total_limit=2)
    trainer.train()
    names = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert names == ["checkpoint-6", "checkpoint-8"]  # oldest deleted, no temporary folders left
    ck = tmp_path / "checkpoint-8"
    for f in ("model.safetensors", "config.json", "optimizer.safetensors", "scheduler.json", "rng_state.json",
              "trainer_state.json"):
        assert (ck / f).is_file(), f
    state = json.loads((ck / "trainer_state.json").read_text())
    assert state["global_step"] == 8 and len([e for e in state["log_history"] if "loss" in e]) == 8


def test_rotation_keeps_the_best_checkpoint(tok, lm_data, tmp_path):
    trainer = lm_trainer(tok, lm_data, tmp_path, max_steps=6, save_steps=2, save_total_limit=1,
                         eval_strategy="steps", eval_steps=2, metric_for_best_model="loss", learning_rate=0.5)
    scores = iter([1.0, 3.0, 2.0])  # step 2 is best
    trainer.evaluation_loop = lambda dataset, prefix: _fake_eval(next(scores))
    trainer.train()
    names = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert names == ["checkpoint-2", "checkpoint-6"]
    assert trainer.state.best_metric == 1.0 and trainer.state.best_model_checkpoint.endswith("checkpoint-2")


def _fake_eval(loss):
    from tinypeft.trainer import PredictionOutput

    return PredictionOutput(None, None, {"eval_loss": loss})


def test_nan_loss_stops_with_step_and_last_checkpoint(tok, lm_data, tmp_path):
    trainer = lm_trainer(tok, lm_data, tmp_path, max_steps=8, save_steps=2)
    forward = trainer.model.forward
    calls, weights_before = [], {}

    def nan_on_step_5(*args, **kwargs):  # one forward per step here (no accumulation)
        calls.append(1)
        if len(calls) < 5:
            return forward(*args, **kwargs)
        weights_before.update(params(trainer.model))
        out = forward(*args, **kwargs)
        return ModelOutput(loss=out.loss * float("nan"), logits=out.logits)

    trainer.model.forward = nan_on_step_5
    with pytest.raises(NonFiniteLossError) as info:
        trainer.train()
    message = str(info.value)
    assert "step 5" in message and "nan" in message and str(tmp_path / "checkpoint-4") in message
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["checkpoint-2", "checkpoint-4"]
    for name, p in trainer.model.named_parameters():  # the bad step was not applied
        np.testing.assert_array_equal(p.data, weights_before[name])
        assert p.grad is None
    assert all(np.isfinite(e["loss"]) for e in trainer.state.log_history if "loss" in e)


class Regressor(nn.Module):
    """y = w x + b, a model without save_pretrained, to feed NaN in through the data."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x, labels=None):
        from tinypeft import functional as F

        pred = self.linear(x.astype(np.float32)).reshape(-1)
        loss = F.mse_loss(pred, labels.astype(np.float32)) if labels is not None else None
        return ModelOutput(loss=loss, logits=pred)


def test_nan_in_the_data_stops_before_any_checkpoint(tmp_path):
    rows = [{"x": [float(i)], "labels": 2.0 * i} for i in range(8)]
    rows[5]["x"] = [float("nan")]
    args = TrainingArguments(str(tmp_path), max_steps=8, per_device_train_batch_size=8, save_steps=1, disable_tqdm=True)
    trainer = Trainer(Regressor(), args, train_dataset=Dataset.from_list(rows))
    with pytest.raises(NonFiniteLossError, match="step 1 .*no checkpoint has been saved yet"):
        trainer.train()
    assert not any(p.name.startswith("checkpoint") for p in tmp_path.iterdir())


def test_plain_module_checkpoint_and_save_model(tmp_path):
    rows = [{"x": [float(i)], "labels": 2.0 * i + 1} for i in range(8)]
    args = TrainingArguments(str(tmp_path), max_steps=4, learning_rate=0.1, per_device_train_batch_size=4,
                             save_steps=4, disable_tqdm=True)
    model = Regressor()
    trainer = Trainer(model, args, train_dataset=Dataset.from_list(rows))
    trainer.train()
    trainer.save_model(tmp_path / "final")
    from tinypeft.checkpoint_io import load_file

    saved = load_file(tmp_path / "final" / "model.safetensors")
    np.testing.assert_array_equal(saved["linear.weight"], model.linear.weight.data)
    assert (tmp_path / "checkpoint-4" / "model.safetensors").is_file()


# -- arguments ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, words", [
    (dict(lr_scheduler_type="exponential"), ["lr_scheduler_type", "'linear'", "'cosine'"]),
    (dict(eval_strategy="always"), ["eval_strategy", "'no'", "'steps'", "'epoch'"]),
    (dict(save_strategy="best"), ["save_strategy", "'epoch'"]),
    (dict(report_to="wandb"), ["report_to", "'none'", "'jsonl'"]),
    (dict(learning_rate=-1.0), ["learning_rate"]),
    (dict(per_device_train_batch_size=0), ["per_device_train_batch_size"]),
    (dict(gradient_accumulation_steps=1.5), ["gradient_accumulation_steps"]),
    (dict(max_steps=0), ["max_steps"]),
    (dict(warmup_ratio=2.0), ["warmup_ratio"]),
    (dict(adam_beta2=1.0), ["adam_beta2"]),
    (dict(save_total_limit=0), ["save_total_limit"]),
    (dict(logging_steps=0), ["logging_steps"]),
    (dict(eval_strategy="steps", eval_steps=2.5), ["eval_steps"]),
])
def test_bad_arguments_name_the_argument_and_the_choices(kwargs, words):
    with pytest.raises(ValueError) as info:
        TrainingArguments("out", **kwargs)
    for word in words:
        assert word in str(info.value)


def test_evaluating_without_an_eval_dataset_fails_before_training(tmp_path):
    args = TrainingArguments(str(tmp_path), max_steps=2, eval_strategy="steps", eval_steps=1, disable_tqdm=True)
    trainer = Trainer(Regressor(), args, train_dataset=Dataset.from_list([{"x": [1.0], "labels": 1.0}]))
    with pytest.raises(ValueError, match="eval_strategy='steps' needs an eval_dataset"):
        trainer.train()
    assert trainer.state.global_step == 0


def test_argument_defaults_match_transformers():
    args = TrainingArguments("out")
    assert (args.learning_rate, args.num_train_epochs, args.max_steps) == (5e-5, 3.0, -1)
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps, args.seed) == (8, 1, 42)
    assert (args.lr_scheduler_type, args.max_grad_norm) == ("linear", 1.0)
    assert (args.logging_steps, args.save_steps) == (500, 500)
    assert (args.eval_strategy, args.save_strategy, args.save_total_limit) == ("no", "steps", None)
    assert (args.weight_decay, args.adam_beta1, args.adam_beta2, args.adam_epsilon) == (0.0, 0.9, 0.999, 1e-8)
    assert args.eval_steps == args.logging_steps
    assert args.get_warmup_steps(100) == 0 and TrainingArguments("o", warmup_ratio=0.1).get_warmup_steps(95) == 10
    with pytest.raises(TypeError):
        TrainingArguments("out", evaluation_strategy="steps")  # unknown names are not silently dropped


# -- more of the loop -----------------------------------------------------------------------------------------
def regression_rows(n=8):
    return [{"x": [float(i) / n], "labels": 2.0 * i / n + 1.0} for i in range(n)]


def test_accumulation_matches_one_big_batch(tmp_path):
    """2 micro-batches of 4 with accumulation = 1 batch of 8: the mean of two equal-sized means."""
    results = []
    for bs, accum in ((8, 1), (4, 2)):
        from tinypeft import manual_seed

        manual_seed(0)
        model = Regressor()
        args = TrainingArguments(str(tmp_path / f"{bs}"), max_steps=1, learning_rate=0.1,
                                 per_device_train_batch_size=bs, gradient_accumulation_steps=accum,
                                 save_strategy="no", disable_tqdm=True)
        Trainer(model, args, train_dataset=Dataset.from_list(regression_rows())).train()
        results.append(params(model))
    for name in results[0]:
        np.testing.assert_allclose(results[1][name], results[0][name], rtol=1e-6, err_msg=name)


def test_a_failed_checkpoint_write_leaves_nothing_half_written(tok, lm_data, tmp_path, monkeypatch):
    from tinypeft.trainer import checkpointing

    trainer = lm_trainer(tok, lm_data, tmp_path, max_steps=4, save_steps=2)
    real, calls = checkpointing.save_optimizer, []

    def disk_full_on_second_save(*args):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(*args)

    monkeypatch.setattr(checkpointing, "save_optimizer", disk_full_on_second_save)
    with pytest.raises(OSError, match="No space"):
        trainer.train()
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-2"]  # no checkpoint-4, no temporary folder
    assert (tmp_path / "checkpoint-2" / "trainer_state.json").is_file()


class AdapterOnly(Regressor):
    """Stands in for a PeftModel: a frozen base, and a save_pretrained that writes the adapter only."""

    def __init__(self):
        super().__init__()
        self.linear.weight.requires_grad_(False)

    def save_pretrained(self, directory):
        Path(directory, "adapter_config.json").write_text("{}")


def test_adapter_only_checkpoints_resume_their_trainable_parameters(tmp_path):
    def run(output_dir, resume=None):
        from tinypeft import manual_seed

        manual_seed(0)  # the same frozen base each time
        model = AdapterOnly()
        args = TrainingArguments(str(output_dir), max_steps=4, learning_rate=0.1, per_device_train_batch_size=2,
                                 save_steps=2, logging_steps=1, disable_tqdm=True)
        trainer = Trainer(model, args, train_dataset=Dataset.from_list(regression_rows()))
        trainer.train(resume_from_checkpoint=resume)
        return trainer

    straight = run(tmp_path / "a")
    ck = tmp_path / "a" / "checkpoint-2"
    assert sorted(p.name for p in ck.iterdir()) == [
        "adapter_config.json", "optimizer.safetensors", "rng_state.json", "scheduler.json",
        "trainable_parameters.safetensors", "trainer_state.json", "training_args.json"]
    resumed = run(tmp_path / "b", resume=ck)
    assert losses(resumed) == losses(straight)
    assert resumed.model.linear.bias.data.tolist() == straight.model.linear.bias.data.tolist()


def test_epoch_strategies_evaluate_and_save_each_epoch(tmp_path):
    args = TrainingArguments(str(tmp_path), num_train_epochs=2, per_device_train_batch_size=4, eval_strategy="epoch",
                             save_strategy="epoch", disable_tqdm=True)
    data = Dataset.from_list(regression_rows())
    trainer = Trainer(Regressor(), args, train_dataset=data, eval_dataset=data)
    trainer.train()
    evals = [(e["epoch"], e["step"]) for e in trainer.state.log_history if "eval_loss" in e]
    assert evals == [(1.0, 2), (2.0, 4)]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["checkpoint-2", "checkpoint-4"]


def test_progress_bar_shows_loss_lr_and_throughput(tok, lm_data, tmp_path, capsys):
    lm_trainer(tok, lm_data, tmp_path, max_steps=2, save_strategy="no", disable_tqdm=False).train()
    shown = capsys.readouterr().err
    assert "loss=" in shown and "lr=" in shown and "tok/s" in shown


def test_loss_curve_is_drawn_when_matplotlib_is_there(tmp_path):
    pytest.importorskip("matplotlib")  # the optional plot extra
    args = TrainingArguments(str(tmp_path), max_steps=3, logging_steps=1, save_strategy="no", disable_tqdm=True)
    Trainer(Regressor(), args, train_dataset=Dataset.from_list(regression_rows())).train()
    assert (tmp_path / "loss_curve.png").read_bytes().startswith(b"\x89PNG")
