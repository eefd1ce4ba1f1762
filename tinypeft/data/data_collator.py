"""Data collators: a list of tokenized examples -> one padded batch, a dict of NumPy arrays.

Names and behaviour follow transformers' data_collator.py (and TRL's DataCollatorForCompletionOnlyLM).
The rule every collator keeps: a label of -100 is ignored by the loss, so padding and anything the
model should not learn to predict (the prompt of an instruction) get -100. Padding goes on the
tokenizer's padding_side; decoder-only models generating in batches want "left".
"""
import warnings

import numpy as np

from ..creation import generator
from ..tensor import as_array

IGNORE_INDEX = -100


def pad_sequences(sequences, pad_value, padding_side="right", length=None, pad_to_multiple_of=None, dtype=np.int64):
    """[[1, 2, 3], [4]] -> [[1, 2, 3], [4, p, p]]: a [batch, length] array (length: the longest by default)."""
    longest = max((len(s) for s in sequences), default=0)
    length = longest if length is None else max(length, longest)
    if pad_to_multiple_of:
        length = -(-length // pad_to_multiple_of) * pad_to_multiple_of
    out = np.full((len(sequences), length), pad_value, dtype=dtype)
    for i, s in enumerate(sequences):
        if len(s):
            if padding_side == "left":
                out[i, length - len(s):] = s
            else:
                out[i, :len(s)] = s
    return out


def _pad_id(tokenizer):
    if tokenizer.pad_token_id is None:
        raise ValueError(
            "The tokenizer has no pad token, so examples of different lengths cannot be batched. Set one, e.g. "
            "tokenizer.pad_token = tokenizer.eos_token (GPT-2 and Llama come without)."
        )
    return tokenizer.pad_token_id


def pad_inputs(tokenizer, features, pad_to_multiple_of=None, max_length=None, padding="longest"):
    """transformers' tokenizer.pad: input_ids with the pad id, attention_mask (made if absent) with 0,
    token_type_ids with the pad type id. Other keys are left to the caller."""
    side = tokenizer.padding_side
    ids = [list(f["input_ids"]) for f in features]
    length = max_length if padding == "max_length" else None
    batch = {"input_ids": pad_sequences(ids, _pad_id(tokenizer), side, length, pad_to_multiple_of)}
    masks = [list(f["attention_mask"]) if "attention_mask" in f else [1] * len(i) for f, i in zip(features, ids)]
    batch["attention_mask"] = pad_sequences(masks, 0, side, length, pad_to_multiple_of)
    if all("token_type_ids" in f for f in features):
        types = [list(f["token_type_ids"]) for f in features]
        batch["token_type_ids"] = pad_sequences(types, tokenizer.pad_token_type_id, side, length, pad_to_multiple_of)
    return batch


def _stack_rest(batch, features, skip):
    """Every other key, stacked as it is (each example must give the same shape)."""
    for key in features[0]:
        if key in batch or key in skip:
            continue
        values = [f[key] for f in features]
        if isinstance(values[0], str):
            raise ValueError(f"column {key!r} holds text; tokenize it, or remove the column before training.")
        batch[key] = np.asarray(values)
    return batch


def default_data_collator(features):
    """Stack examples that already have equal lengths; "label"/"label_ids" become "labels" as in transformers."""
    features = [dict(f) for f in features]
    batch = {}
    for src in ("label", "label_ids"):
        if src in features[0]:
            batch["labels"] = np.asarray([f[src] for f in features])
    return _stack_rest(batch, features, skip=("label", "label_ids"))


class _PaddingCollator:
    """What the collators that pad to a chosen length share: the tokenizer and how far to pad."""

    def __init__(self, tokenizer, padding=True, max_length=None, pad_to_multiple_of=None, return_tensors="np"):
        self.tokenizer = tokenizer
        self.padding = "longest" if padding is True else padding
        self.max_length = max_length
        self.pad_to_multiple_of = pad_to_multiple_of
        self.return_tensors = return_tensors

    def _pad_inputs(self, features):
        return pad_inputs(self.tokenizer, features, self.pad_to_multiple_of, self.max_length, self.padding)


class DataCollatorWithPadding(_PaddingCollator):
    """Sequence classification: pad the inputs; labels (one per example) are stacked."""

    def __call__(self, features):
        batch = self._pad_inputs(features)
        for src in ("label", "label_ids", "labels"):
            if src in features[0]:
                batch["labels"] = np.asarray([f[src] for f in features])
        return _stack_rest(batch, features, skip=("label", "label_ids"))


class DataCollatorForLanguageModeling:
    """Causal LM (mlm=False): labels = input_ids, -100 on padding. The model shifts them by one itself.

    Padding is found from the attention mask, not from the pad id, so a real end-of-text token keeps its
    label when pad_token = eos_token (the common GPT-2 set-up): the model still learns where to stop.
    mlm=True is BERT's masked LM: mlm_probability of the tokens are chosen (80% -> [MASK], 10% -> a random
    token, 10% unchanged) and only those are labelled; draws come from tinypeft's seeded generator."""

    def __init__(self, tokenizer, mlm=True, mlm_probability=0.15, pad_to_multiple_of=None, return_tensors="np"):
        if mlm and tokenizer.mask_token is None:
            raise ValueError("mlm=True needs a tokenizer with a mask token; "
                             "for causal language modeling pass mlm=False.")
        self.tokenizer = tokenizer
        self.mlm = mlm
        self.mlm_probability = mlm_probability
        self.pad_to_multiple_of = pad_to_multiple_of
        self.return_tensors = return_tensors

    def __call__(self, features):
        batch = pad_inputs(self.tokenizer, features, self.pad_to_multiple_of)
        _stack_rest(batch, features, skip=("labels",))
        if self.mlm:
            batch["input_ids"], batch["labels"] = self.mask_tokens(batch["input_ids"], batch["attention_mask"])
        else:
            batch["labels"] = np.where(batch["attention_mask"] == 1, batch["input_ids"], IGNORE_INDEX)
        return batch

    def mask_tokens(self, input_ids, attention_mask):
        rng = generator()
        tok = self.tokenizer
        special = np.isin(input_ids, tok.all_special_ids) | (attention_mask == 0)
        chosen = (rng.random(input_ids.shape) < self.mlm_probability) & ~special
        labels = np.where(chosen, input_ids, IGNORE_INDEX)
        inputs = input_ids.copy()
        to_mask = chosen & (rng.random(input_ids.shape) < 0.8)
        inputs[to_mask] = tok.mask_token_id
        to_random = chosen & ~to_mask & (rng.random(input_ids.shape) < 0.5)  # half of the remaining 20%
        inputs[to_random] = rng.integers(0, len(tok), size=input_ids.shape)[to_random]
        return inputs, labels


class DataCollatorForCompletionOnlyLM(DataCollatorForLanguageModeling):
    """Causal LM that learns only the answer: every label up to and including the response template
    ("### Answer:") is -100, so the loss covers the completion alone.

    The template is searched for as token ids. A BPE tokenizer splits the same text differently at the
    start of a string and after a space ("###" vs " ###"), so a text template is searched for in both
    forms. If it is still not found, pass the ids as they appear inside a tokenized example
    (response_template=[...]). An example without the template is warned about and contributes no loss
    (as TRL does)."""

    def __init__(self, response_template, tokenizer, pad_to_multiple_of=None, return_tensors="np"):
        super().__init__(tokenizer, mlm=False, pad_to_multiple_of=pad_to_multiple_of, return_tensors=return_tensors)
        if isinstance(response_template, str):
            encode = lambda text: tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
            self.templates = [encode(response_template), encode(" " + response_template)]
        else:
            self.templates = [list(response_template)]
        if not self.templates[0]:
            raise ValueError("response_template is empty.")

    def __call__(self, features):
        batch = super().__call__(features)
        for i, row in enumerate(batch["input_ids"]):
            end = self._answer_start(row)
            if end is None:
                warnings.warn(f"response template {self.templates[0]} not found in example {i}; "
                              "its labels are all -100 (no loss).", stacklevel=2)
                batch["labels"][i] = IGNORE_INDEX
            else:
                batch["labels"][i, :end] = IGNORE_INDEX
        return batch

    def _answer_start(self, row):
        """Index just past the first occurrence of the template (in either tokenization), or None."""
        best = None
        for template in self.templates:
            k = len(template)
            if len(row) < k:
                continue
            windows = np.lib.stride_tricks.sliding_window_view(row, k)  # [T - k + 1, k]
            hits = np.flatnonzero((windows == np.asarray(template)).all(axis=1))
            if len(hits) and (best is None or hits[0] + k < best):
                best = hits[0] + k
        return best


class DataCollatorForSeq2Seq(_PaddingCollator):
    """Encoder-decoder: pad the inputs, pad "labels" to the longest label with label_pad_token_id, and,
    when the model can make them, add decoder_input_ids (labels shifted right) for it."""

    def __init__(self, tokenizer, model=None, padding=True, max_length=None, pad_to_multiple_of=None,
                 label_pad_token_id=IGNORE_INDEX, return_tensors="np"):
        super().__init__(tokenizer, padding, max_length, pad_to_multiple_of, return_tensors)
        self.model = model
        self.label_pad_token_id = label_pad_token_id

    def __call__(self, features):
        batch = self._pad_inputs(features)
        if "labels" in features[0]:
            labels = [list(f["labels"]) for f in features]
            batch["labels"] = pad_sequences(labels, self.label_pad_token_id, self.tokenizer.padding_side,
                                            pad_to_multiple_of=self.pad_to_multiple_of)
            prepare = getattr(self.model, "prepare_decoder_input_ids_from_labels", None)
            if prepare is not None and "decoder_input_ids" not in features[0]:
                decoder_input_ids = prepare(labels=batch["labels"])
                batch["decoder_input_ids"] = as_array(decoder_input_ids)
        return _stack_rest(batch, features, skip=("labels",))


class DataCollatorForTokenClassification(_PaddingCollator):
    """Token classification: one label per token; labels are padded to the inputs' length with
    label_pad_token_id, on the same side as the inputs so they stay aligned."""

    def __init__(self, tokenizer, padding=True, max_length=None, pad_to_multiple_of=None,
                 label_pad_token_id=IGNORE_INDEX, return_tensors="np"):
        super().__init__(tokenizer, padding, max_length, pad_to_multiple_of, return_tensors)
        self.label_pad_token_id = label_pad_token_id

    def __call__(self, features):
        batch = self._pad_inputs(features)
        key = "label" if "label" in features[0] else "labels"
        if key in features[0]:
            labels = [list(f[key]) for f in features]
            batch["labels"] = pad_sequences(labels, self.label_pad_token_id, self.tokenizer.padding_side,
                                            length=batch["input_ids"].shape[1])
        return _stack_rest(batch, features, skip=("label", "labels"))
