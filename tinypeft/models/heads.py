"""Losses and pooling shared by the task heads (causal LM, sequence classification, token classification)."""
import numpy as np

from .. import functional as F
from ..tensor import as_numpy
from .modeling_utils import ModelOutput


def causal_lm_loss(logits, labels):
    """Next-token cross-entropy: position t predicts labels[t + 1]; -100 labels are ignored."""
    labels = as_numpy(labels)
    V = logits.shape[-1]
    # Shift the labels, not the logits (as transformers does): the last position gets -100, so no
    # [B, T-1, V] copy of the logits is made, and its gradient needs no scatter back into [B, T, V].
    targets = np.full(labels.shape, -100, dtype=np.int64)  # [B, T]
    targets[:, :-1] = labels[:, 1:]
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-100)


def classification_loss(config, logits, labels):
    """transformers' problem_type rules: regression for one label, else single-label cross-entropy."""
    labels = as_numpy(labels)
    problem = config.problem_type
    if problem is None:
        problem = "regression" if config.num_labels == 1 else (
            "single_label_classification" if labels.dtype.kind in "iu" else "multi_label_classification")
    if problem == "regression":
        return F.mse_loss(logits.reshape(-1), labels.reshape(-1).astype(logits.dtype))
    if problem == "single_label_classification":
        return F.cross_entropy(logits.reshape(-1, config.num_labels), labels.reshape(-1))
    return F.binary_cross_entropy_with_logits(logits, labels.astype(logits.dtype))


def sequence_classification_output(config, logits, input_ids, labels, pool_last_token):
    """Decoder-only classifiers score the last non-padding token of each row."""
    if pool_last_token:
        B, T = logits.shape[:2]
        ids = None if input_ids is None else as_numpy(input_ids)
        if ids is None:
            last = np.full(B, T - 1)  # inputs_embeds only: padding cannot be seen, take the last position
        elif config.pad_token_id is None:
            if B != 1:
                raise ValueError("Cannot handle batch sizes > 1 if no padding token is defined (set config.pad_token_id).")
            last = np.full(B, T - 1)
        else:
            # the rightmost non-pad token (works for left and right padding)
            last = (np.arange(T) * (ids != config.pad_token_id)).argmax(-1)
        logits = logits[np.arange(B), last]  # [B, T, C] -> [B, C]
    loss = classification_loss(config, logits, labels) if labels is not None else None
    return ModelOutput(loss=loss, logits=logits)
