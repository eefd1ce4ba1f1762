"""Trainer: the training loop of transformers' Trainer, small enough to read in one sitting.

    trainer = Trainer(model, TrainingArguments("out", max_steps=100), train_dataset=ds, data_collator=collator)
    trainer.train()                                 # or train(resume_from_checkpoint=True)
    trainer.evaluate()                              # {"eval_loss": ..., "eval_<metric>": ...}

One optimizer step:

    for each of gradient_accumulation_steps micro-batches:
        loss = model(**batch).loss
        (loss / n_micro).backward()                 # grads add up (+=) to the gradient of the mean loss
    clip_grad_norm_(params, max_grad_norm)
    optimizer.step(); scheduler.step(); optimizer.zero_grad()

Reproducibility: the shuffled order of epoch e is a function of (seed, e) alone, and dropout draws from
tinypeft's generator, whose state is saved in every checkpoint with the optimizer and the schedule. So a
run resumed from checkpoint-k replays steps k+1... exactly as the unbroken run did: same batches, same
masks, same losses.
"""
import math
import time
from pathlib import Path

import numpy as np

from ..autograd import no_grad
from ..checkpoint_io import folder_lock
from ..nn.utils import clip_grad_norm_
from ..tensor import Tensor
from . import checkpointing as ckpt
from .optimization import create_optimizer, create_scheduler
from .reporting import JsonlLog, ProgressBar, TensorBoardLog, format_logs, plot_loss_curve
from .trainer_utils import (
    EvalPrediction,
    NonFiniteLossError,
    PredictionOutput,
    TrainerState,
    TrainOutput,
    denumpify,
    get_rng_state,
    set_rng_state,
    set_seed,
)
from .training_args import TrainingArguments


class Trainer:
    def __init__(self, model=None, args=None, data_collator=None, train_dataset=None, eval_dataset=None,
                 processing_class=None, compute_metrics=None, optimizers=(None, None)):
        if model is None:
            raise ValueError("Trainer needs a model.")
        if getattr(model, "is_quantized", False) and not hasattr(model, "peft_config"):
            from ..quantization.ops import PURELY_QUANTIZED_MESSAGE

            raise ValueError(PURELY_QUANTIZED_MESSAGE)
        self.model = model
        self.args = args if args is not None else TrainingArguments()
        self.processing_class = processing_class
        if data_collator is None:
            from ..data import DataCollatorWithPadding, default_data_collator

            padding = processing_class is not None
            data_collator = DataCollatorWithPadding(processing_class) if padding else default_data_collator
        self.data_collator = data_collator
        self.train_dataset = train_dataset
        self.eval_dataset = eval_dataset
        self.compute_metrics = compute_metrics
        self._given_optimizers = tuple(optimizers)
        self.optimizer, self.lr_scheduler = optimizers
        self.state = TrainerState()
        self.label_names = self.args.label_names or ["labels"]
        log_dir = self.args.logging_dir or self.args.output_dir
        self._jsonl = JsonlLog(log_dir) if "jsonl" in self.args.report_to else None
        self._tensorboard = None  # opened by train() (report_to="tensorboard"): an event file per run
        self._last_checkpoint = None
        self._last_eval_metrics = None
        self._bar = None  # the training bar while train() runs: log lines are written above it

    # -- data ------------------------------------------------------------------------------------------------
    def _epoch_batches(self, epoch):
        """Index batches of one epoch, shuffled by (seed, epoch); the last batch may be smaller."""
        n, bs = len(self.train_dataset), self.args.per_device_train_batch_size
        order = np.random.default_rng([self.args.seed, epoch]).permutation(n)
        return [order[i:i + bs] for i in range(0, n, bs)]

    def _collate(self, dataset, indices):
        return self.data_collator([dataset[int(i)] for i in indices])

    def _steps_per_epoch(self):
        micro_batches = math.ceil(len(self.train_dataset) / self.args.per_device_train_batch_size)
        return math.ceil(micro_batches / self.args.gradient_accumulation_steps)

    # -- the loss ---------------------------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False):
        outputs = model(**inputs)
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs[0]
        if loss is None:
            raise ValueError(f"the model returned no loss; the batch has keys {sorted(inputs)}. A model computes "
                             "its loss only when the batch has labels: check the data collator.")
        return (loss, outputs) if return_outputs else loss

    # -- training ---------------------------------------------------------------------------------------------
    def train(self, resume_from_checkpoint=None):
        """Train; output_dir is locked for the run (a second process writing there is refused), and the
        hidden leftovers of killed runs are removed first."""
        with folder_lock(self.args.output_dir):
            ckpt.cleanup_leftovers(self.args.output_dir)
            try:
                return self._train(resume_from_checkpoint)
            finally:
                if self._tensorboard is not None:  # one event file per train() call, closed however it ends
                    self._tensorboard.close()
                    self._tensorboard = None

    def _train(self, resume_from_checkpoint):
        args, model = self.args, self.model
        if self.train_dataset is None or len(self.train_dataset) == 0:
            raise ValueError("Trainer.train() needs a non-empty train_dataset.")
        if args.eval_strategy != "no" and self.eval_dataset is None:
            raise ValueError(f"eval_strategy={args.eval_strategy!r} needs an eval_dataset; pass one to Trainer, "
                             "or set eval_strategy='no'.")
        steps_per_epoch = self._steps_per_epoch()
        max_steps = args.max_steps if args.max_steps > 0 else math.ceil(args.num_train_epochs * steps_per_epoch)
        num_epochs = math.ceil(max_steps / steps_per_epoch)
        logging_steps, eval_steps, save_steps = (
            args.interval(name, max_steps) for name in ("logging_steps", "eval_steps", "save_steps"))

        if args.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=args.gradient_checkpointing_kwargs)
        # made afresh for each train() call (unless given), so a second run starts without old moments
        given_optimizer, given_scheduler = self._given_optimizers
        self.optimizer = given_optimizer if given_optimizer is not None else create_optimizer(model, args)
        self.lr_scheduler = (given_scheduler if given_scheduler is not None
                             else create_scheduler(self.optimizer, args, max_steps))
        params = [p for g in self.optimizer.param_groups for p in g["params"]]

        checkpoint = self._resolve_checkpoint(resume_from_checkpoint)
        if checkpoint is not None:
            self._load_checkpoint(checkpoint)
            self.state.run_id = self.state.run_id or ckpt.new_run_id()  # a checkpoint from before run ids
        else:
            self._refuse_foreign_checkpoints()
            set_seed(args.seed)
            self.state = TrainerState(run_id=ckpt.new_run_id())
        self.state.max_steps, self.state.num_train_epochs = max_steps, num_epochs
        self.state.logging_steps, self.state.eval_steps, self.state.save_steps = logging_steps, eval_steps, save_steps
        self.state.train_batch_size = args.per_device_train_batch_size
        if self._jsonl is not None:
            self._jsonl.truncate_after(self.state.global_step)

        start_step = self.state.global_step
        bar = self._bar = ProgressBar(max_steps, start_step, args.disable_tqdm)
        start_time = time.perf_counter()
        model.train()
        try:
            for epoch in range(start_step // steps_per_epoch, num_epochs):
                batches = self._epoch_batches(epoch)
                bar.set_epoch(epoch, num_epochs)
                accum = args.gradient_accumulation_steps
                steps = [batches[i:i + accum] for i in range(0, len(batches), accum)]
                for step_in_epoch, micro in enumerate(steps):
                    if epoch * steps_per_epoch + step_in_epoch < start_step:
                        continue  # resuming: these steps were done before the checkpoint
                    if self.state.global_step >= max_steps:
                        break
                    loss, lr, grad_norm = self._training_step(micro, params, bar)
                    self.state.global_step += 1
                    self.state.epoch = epoch + (step_in_epoch + 1) / len(steps)
                    self.state.total_loss += loss
                    self.state.logging_loss += loss
                    self.state.logging_count += 1
                    bar.step(loss, lr)
                    step = self.state.global_step
                    if step % logging_steps == 0 or step == max_steps:
                        self._log_training(grad_norm, lr)
                    if args.eval_strategy == "steps" and step % eval_steps == 0:
                        self.evaluate()
                    if args.save_strategy == "steps" and step % save_steps == 0:
                        self._save_checkpoint()
                if args.eval_strategy == "epoch":
                    self.evaluate()
                if args.save_strategy == "epoch":
                    self._save_checkpoint()
        finally:
            bar.close()
            self._bar = None

        runtime = time.perf_counter() - start_time
        steps_done = self.state.global_step - start_step
        training_loss = self.state.total_loss / max(self.state.global_step, 1)
        samples = steps_done * args.per_device_train_batch_size * args.gradient_accumulation_steps
        metrics = {
            "train_runtime": round(runtime, 4),
            "train_samples_per_second": round(samples / max(runtime, 1e-9), 3),
            "train_steps_per_second": round(steps_done / max(runtime, 1e-9), 3),
            "train_loss": training_loss,
            "epoch": self.state.epoch,
        }
        self.log(dict(metrics))
        if args.load_best_model_at_end and self.state.best_model_checkpoint:
            ckpt.load_model(self.model, self.state.best_model_checkpoint)
        curve = plot_loss_curve(self.state.log_history, args.output_dir)
        if curve is not None:
            print(f"loss curve written to {curve}", flush=True)
        return TrainOutput(self.state.global_step, training_loss, metrics)

    def _training_step(self, micro_batches, params, bar):
        """Forward and backward over the micro-batches of one step, then clip and update.

        Nothing is applied when a loss or the gradient norm is not finite: the model stays as after the
        last good step, and the error says where the last good checkpoint is."""
        lr = self.optimizer.param_groups[0]["lr"]
        step_loss = 0.0
        for indices in micro_batches:
            batch = self._collate(self.train_dataset, indices)
            bar.count(batch)
            loss = self.compute_loss(self.model, batch)
            value = float(loss.item())
            if not math.isfinite(value):
                self._stop_non_finite(f"the loss is {value}")
            (loss / len(micro_batches)).backward()  # the gradient of the mean over the micro-batches
            step_loss += value / len(micro_batches)
        max_norm = self.args.max_grad_norm if self.args.max_grad_norm > 0 else float("inf")
        grad_norm = float(clip_grad_norm_(params, max_norm).item())
        if not math.isfinite(grad_norm):
            self._stop_non_finite(f"the gradient norm is {grad_norm} (loss {step_loss:.6g})")
        self.optimizer.step()
        self.lr_scheduler.step()
        allocate = getattr(getattr(self.model, "base_model", None), "update_and_allocate", None)
        if allocate is not None:  # AdaLoRA: PEFT asks every loop to call it here, with the steps done so far
            allocate(self.state.global_step)
        self.optimizer.zero_grad()
        return step_loss, lr, grad_norm

    def _stop_non_finite(self, what):
        self.optimizer.zero_grad()
        step = self.state.global_step + 1
        last = self._last_checkpoint or ckpt.latest_checkpoint(self.args.output_dir)
        where = f"the last good checkpoint is {last}" if last else "no checkpoint has been saved yet"
        raise NonFiniteLossError(
            f"Training stopped at step {step} (epoch {self.state.epoch:.2f}): {what}. The update was not applied "
            f"and no checkpoint was written for it; {where}. Try a lower learning_rate or max_grad_norm, or "
            "check the examples of this batch; then train(resume_from_checkpoint=...) to continue."
        )

    def _log_training(self, grad_norm, lr):
        s = self.state
        self.log({"loss": s.logging_loss / s.logging_count, "grad_norm": grad_norm, "learning_rate": lr})
        s.logging_loss, s.logging_count = 0.0, 0

    def log(self, logs):
        """Add an entry (with epoch and step) to state.log_history, print it, and with report_to="jsonl"
        append it to the file."""
        entry = {k: denumpify(v) for k, v in logs.items()}
        entry.setdefault("epoch", round(self.state.epoch, 4))
        entry["step"] = self.state.global_step
        self.state.log_history.append(entry)
        # on the console as transformers prints it, with or without the bar (disable_tqdm=True still logs)
        if self._bar is not None and not self.args.disable_tqdm:
            self._bar.write(format_logs(entry))
        else:
            print(format_logs(entry), flush=True)
        if self._jsonl is not None:
            self._jsonl.write(entry)
        if "tensorboard" in self.args.report_to:
            self._tensorboard = self._tensorboard or TensorBoardLog(self.args)
            self._tensorboard.write(entry)

    # -- evaluation -------------------------------------------------------------------------------------------
    def evaluate(self, eval_dataset=None, metric_key_prefix="eval"):
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if dataset is None:
            raise ValueError("Trainer.evaluate() needs an eval_dataset (given to Trainer or to evaluate).")
        output = self.evaluation_loop(dataset, metric_key_prefix)
        self.log(dict(output.metrics))
        self._last_eval_metrics = output.metrics
        return output.metrics

    def predict(self, test_dataset, metric_key_prefix="test"):
        return self.evaluation_loop(test_dataset, metric_key_prefix)

    def evaluation_loop(self, dataset, metric_key_prefix):
        """Run the model over `dataset` in order, without gradients and in eval mode (no dropout)."""
        model, bs = self.model, self.args.per_device_eval_batch_size
        was_training = model.training
        model.eval()
        start = time.perf_counter()
        losses, preds, labels = [], [], []
        try:
            with no_grad():
                for i in range(0, len(dataset), bs):
                    batch = self._collate(dataset, range(i, min(i + bs, len(dataset))))
                    outputs = model(**batch)
                    n = len(next(iter(batch.values())))
                    if outputs.get("loss") is not None:
                        losses.append((float(outputs["loss"].item()), n))
                    if not self.args.prediction_loss_only:
                        preds.append(_numpy(outputs["logits"]))
                    batch_labels = [batch[k] for k in self.label_names if k in batch]
                    if batch_labels:
                        labels.append(np.asarray(batch_labels[0]))
        finally:
            model.train(was_training)
        runtime = time.perf_counter() - start
        predictions = _concat_padded(preds)
        label_ids = _concat_padded(labels) if labels else None
        metrics = {}
        if losses:
            metrics["loss"] = sum(v * n for v, n in losses) / sum(n for _, n in losses)  # mean over examples
        if self.compute_metrics is not None and label_ids is not None and predictions is not None:
            metrics.update(self.compute_metrics(EvalPrediction(predictions=predictions, label_ids=label_ids)))
        metrics["runtime"] = round(runtime, 4)
        metrics["samples_per_second"] = round(len(dataset) / max(runtime, 1e-9), 3)
        metrics = {(k if k.startswith(metric_key_prefix + "_") else f"{metric_key_prefix}_{k}"): denumpify(v)
                   for k, v in metrics.items()}
        return PredictionOutput(predictions=predictions, label_ids=label_ids, metrics=metrics)

    # -- saving -----------------------------------------------------------------------------------------------
    def save_model(self, output_dir=None):
        """The model as save_pretrained writes it (a PEFT model: its adapter), and the tokenizer if given."""
        output_dir = Path(output_dir or self.args.output_dir)
        ckpt.save_model(self.model, output_dir)
        if self.processing_class is not None and hasattr(self.processing_class, "save_pretrained"):
            self.processing_class.save_pretrained(output_dir)

    def _save_checkpoint(self):
        step = self.state.global_step
        final = Path(self.args.output_dir) / f"checkpoint-{step}"
        self._update_best(final)

        def write(tmp):
            self.save_model(tmp)
            ckpt.save_optimizer(self.optimizer, tmp / ckpt.OPTIMIZER_NAME)
            ckpt.write_json(tmp / ckpt.SCHEDULER_NAME, self.lr_scheduler.state_dict())
            ckpt.write_json(tmp / ckpt.RNG_STATE_NAME, get_rng_state())
            ckpt.write_json(tmp / "training_args.json", self.args.to_dict())
            self.state.save_to_json(tmp / ckpt.TRAINER_STATE_NAME)

        self._last_checkpoint = ckpt.write_checkpoint(self.args.output_dir, step, write)
        ckpt.rotate_checkpoints(self.args.output_dir, self.args.save_total_limit, keep=self.state.best_model_checkpoint,
                                run_id=self.state.run_id, newest=self._last_checkpoint)
        return self._last_checkpoint

    def _refuse_foreign_checkpoints(self):
        """A new run must not mix its checkpoints with an old run's: rotation would keep the old run's
        higher step numbers and delete the new ones, and resume_from_checkpoint=True would pick the old run."""
        old = ckpt.sorted_checkpoints(self.args.output_dir)
        if not old:
            return
        if not self.args.overwrite_output_dir:
            names = ", ".join(c.name for c in old[:3]) + (" ..." if len(old) > 3 else "")
            raise ValueError(f"{self.args.output_dir} holds checkpoints of an earlier run ({names}). Continue it "
                             "with train(resume_from_checkpoint=True), choose another output_dir, or set "
                             "TrainingArguments(overwrite_output_dir=True) to delete them.")
        for c in old:
            ckpt.remove_checkpoint(c)

    def _update_best(self, checkpoint_dir):
        name = self.args.metric_for_best_model
        if name is None or not self._last_eval_metrics:
            return
        key = name if name.startswith("eval_") else f"eval_{name}"
        if key not in self._last_eval_metrics:
            raise KeyError(f"metric_for_best_model={name!r}: the evaluation gave no {key!r}; it gave "
                           f"{sorted(self._last_eval_metrics)}.")
        value = self._last_eval_metrics[key]
        best = self.state.best_metric
        better = np.greater if self.args.greater_is_better else np.less
        if best is None or better(value, best):
            self.state.best_metric = value
            self.state.best_model_checkpoint = str(checkpoint_dir)

    # -- resuming ---------------------------------------------------------------------------------------------
    def _resolve_checkpoint(self, resume_from_checkpoint):
        if resume_from_checkpoint is None or resume_from_checkpoint is False:
            return None
        if resume_from_checkpoint is True:
            latest = ckpt.latest_checkpoint(self.args.output_dir)
            if latest is None:
                raise ValueError(f"resume_from_checkpoint=True but {self.args.output_dir} has no checkpoint-* folder.")
            return latest
        path = Path(resume_from_checkpoint)
        if not (path / ckpt.TRAINER_STATE_NAME).is_file():
            raise ValueError(f"resume_from_checkpoint={str(path)!r} is not a checkpoint "
                             f"(no {ckpt.TRAINER_STATE_NAME} in it).")
        return path

    def _load_checkpoint(self, path):
        ckpt.load_model(self.model, path)
        ckpt.load_optimizer(self.optimizer, path / ckpt.OPTIMIZER_NAME)
        self.lr_scheduler.load_state_dict(ckpt.read_json(path / ckpt.SCHEDULER_NAME))
        for group, lr in zip(self.optimizer.param_groups, self.lr_scheduler.get_last_lr()):
            group["lr"] = lr
        set_rng_state(ckpt.read_json(path / ckpt.RNG_STATE_NAME))
        self.state = TrainerState.load_from_json(path / ckpt.TRAINER_STATE_NAME)
        self._last_checkpoint = path


def _numpy(x):
    if isinstance(x, Tensor):
        return x.detach().numpy()
    return np.asarray(x)


def _concat_padded(arrays, pad_value=-100):
    """Concatenate batches along dim 0; per-token outputs of batches padded to different lengths are
    padded to the longest with -100 first (as transformers does), which metrics must skip."""
    if not arrays:
        return None
    if arrays[0].ndim < 2 or len({a.shape[1] for a in arrays}) == 1:
        return np.concatenate(arrays, axis=0)
    length = max(a.shape[1] for a in arrays)
    padded = []
    for a in arrays:
        out = np.full((a.shape[0], length) + a.shape[2:], pad_value, dtype=a.dtype)
        out[:, :a.shape[1]] = a
        padded.append(out)
    return np.concatenate(padded, axis=0)
