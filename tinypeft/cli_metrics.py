"""The metrics of `tinypeft train --eval-data` and `tinypeft evaluate`, one code path for both: the Trainer's
evaluation loop with accuracy and macro-F1 for classifiers, perplexity for language models."""
import math

import numpy as np

CLASSIFICATION_TASKS = ("SEQ_CLS", "TOKEN_CLS")


def classification_metrics(eval_pred):
    """accuracy and macro-F1 (the unweighted mean over classes of 2PR/(P+R), as sklearn's f1_score with
    average="macro") of argmax(logits); positions labelled -100 (token classification's padding and
    continuation pieces) are skipped."""
    logits, labels = np.asarray(eval_pred.predictions), np.asarray(eval_pred.label_ids)
    preds = logits.argmax(-1)          # [N] or [N, T]
    keep = labels != -100
    preds, labels = preds[keep], labels[keep]
    if labels.size == 0:
        return {}
    f1s = []
    for c in np.union1d(preds, labels):  # classes that occur in the predictions or the labels
        tp = np.sum((preds == c) & (labels == c))
        fp, fn = np.sum((preds == c) & (labels != c)), np.sum((preds != c) & (labels == c))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return {"accuracy": float(np.mean(preds == labels)), "f1": float(np.mean(f1s))}


def with_perplexity(trainer_cls):
    """A Trainer whose evaluation adds perplexity = exp(eval_loss) (a language model's loss is the mean
    token cross-entropy), as transformers' run_clm example reports it."""

    class LMTrainer(trainer_cls):
        def evaluation_loop(self, dataset, metric_key_prefix):
            out = super().evaluation_loop(dataset, metric_key_prefix)
            loss = out.metrics.get(f"{metric_key_prefix}_loss")
            if loss is not None:
                out.metrics[f"{metric_key_prefix}_perplexity"] = math.exp(loss) if loss < 700 else float("inf")
            return out

    return LMTrainer


def task_trainer(task, model, args, **kwargs):
    """A Trainer for `task` whose evaluate() reports its metrics (kwargs: datasets, data_collator). A language
    model's evaluation keeps no logits (args.prediction_loss_only, see lm_evaluation): they are vocab-sized
    per token, and perplexity needs only the loss."""
    from .trainer import Trainer

    if task in CLASSIFICATION_TASKS:
        return Trainer(model, args, compute_metrics=classification_metrics, **kwargs)
    return with_perplexity(Trainer)(model, args, **kwargs)


def lm_evaluation(task):
    """TrainingArguments' prediction_loss_only for `task`: True for language models."""
    return task not in CLASSIFICATION_TASKS
