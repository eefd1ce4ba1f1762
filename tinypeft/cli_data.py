"""`tinypeft train`'s data: a JSONL/JSON/CSV file -> tokenized examples and the collator for the task.

    SEQ_CLS       text, label          label: an int, or a name (names are numbered in sorted order)
    TOKEN_CLS     tokens, tags         words and one label per word; the first piece of each word is
                                       labelled, the other pieces and the special tokens get -100
    CAUSAL_LM     text                 labels = input_ids: every token is learnt
                  prompt, completion   labels are -100 over the prompt: only the completion is learnt
    SEQ_2_SEQ_LM  prompt, completion   (or text, target): input_ids from the prompt, labels from the completion
"""
from pathlib import Path

from .data import (DataCollatorForSeq2Seq, DataCollatorForTokenClassification, DataCollatorWithPadding, Dataset,
                   load_dataset)

IGNORE_INDEX = -100


def read_rows(path):
    kind = "csv" if Path(path).suffix.lower() in (".csv", ".tsv") else "json"
    try:
        return load_dataset(kind, data_files=str(path), split="train")
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read it as {kind.upper()}: {e}") from None


def need(rows, *columns):
    missing = [c for c in columns if c not in rows.column_names]
    if missing:
        raise KeyError(f"needs column(s) {', '.join(missing)}; it has {', '.join(rows.column_names) or 'none'}")


def label_ids(values, what="label", label2id=None):
    """Ints stay ints (each >= 0: a class index); names become 0..n-1 in sorted order, or the ids of
    `label2id` (an eval file numbered as the training file was). A missing label is an error naming the
    example, never a class called "None". Returns (ids, id2label or None)."""
    for i, v in enumerate(values):
        if v is None or (isinstance(v, str) and not v.strip()):
            raise ValueError(f"example {i + 1} has no {what}; every example needs one")
        if isinstance(v, (list, dict)):
            raise ValueError(f"example {i + 1}: {what} {v!r} is not a class (an int or a name)")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        negative = next((i for i, v in enumerate(values) if v < 0), None)
        if negative is not None:
            raise ValueError(f"example {negative + 1}: {what} {values[negative]} is negative; class indices "
                             "are 0, 1, ... (or give the classes as names)")
        return list(values), None
    if label2id:
        unknown = next((i for i, v in enumerate(values) if str(v) not in label2id), None)
        if unknown is not None:
            raise ValueError(f"example {unknown + 1}: {what} {values[unknown]!r} is not one of the training "
                             f"data's ({', '.join(map(str, label2id))})")
        return [label2id[str(v)] for v in values], {i: n for n, i in label2id.items()}
    names = sorted({str(v) for v in values})
    index = {n: i for i, n in enumerate(names)}
    return [index[str(v)] for v in values], dict(enumerate(names))


def text_of(rows, column):
    """The column's values, each a string (a missing or non-text value is an error naming the example)."""
    values = rows[column]
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise ValueError(f"example {i + 1}: {column} is {v!r}, not text")
    return values


def make_dataset(path, task, tokenizer, max_length, label2id=None):
    """(Dataset of token ids, collator_fn(model) -> collator, kwargs for from_pretrained (num_labels, ...)).
    label2id: the training data's label names, for an eval file (so "pos" is the same class in both)."""
    rows = read_rows(path)
    if len(rows) == 0:
        raise ValueError("it holds no examples")
    enc = lambda text, special=True: tokenizer(text, truncation=True, max_length=max_length,  # noqa: E731
                                               add_special_tokens=special)["input_ids"]
    if task == "SEQ_CLS":
        need(rows, "text", "label")
        text_of(rows, "text")
        labels, id2label = label_ids(rows["label"], label2id=label2id)
        n = len(id2label) if id2label else max(labels) + 1
        ds = Dataset([{**{k: v for k, v in tokenizer(r["text"], truncation=True, max_length=max_length).items()},
                       "label": y} for r, y in zip(rows, labels)])
        kwargs = {"num_labels": n}
        if id2label:
            kwargs.update(id2label=id2label, label2id={v: k for k, v in id2label.items()})
        return ds, lambda model: DataCollatorWithPadding(tokenizer), kwargs
    if task == "TOKEN_CLS":
        need(rows, "tokens", "tags")
        for i, r in enumerate(rows):
            if not isinstance(r.get("tokens"), list) or not isinstance(r.get("tags"), list):
                raise ValueError(f"example {i + 1}: tokens and tags must be lists")
        flat, id2label = label_ids([t for r in rows for t in r["tags"]], what="tag", label2id=label2id)
        examples, i = [], 0
        for r in rows:
            if len(r["tokens"]) != len(r["tags"]):
                raise ValueError(f"an example has {len(r['tokens'])} tokens but {len(r['tags'])} tags")
            ids, labels = [], []
            for word in r["tokens"]:
                pieces = enc(word if not ids else " " + word, special=False) or [tokenizer.unk_token_id]
                ids += pieces
                labels += [flat[i]] + [IGNORE_INDEX] * (len(pieces) - 1)
                i += 1
            if tokenizer.cls_token_id is not None and tokenizer.sep_token_id is not None:
                ids, labels = [tokenizer.cls_token_id] + ids + [tokenizer.sep_token_id], [IGNORE_INDEX] + labels + [IGNORE_INDEX]
            examples.append({"input_ids": ids[:max_length], "labels": labels[:max_length]})
        n = len(id2label) if id2label else max(flat) + 1
        kwargs = {"num_labels": n}
        if id2label:
            kwargs.update(id2label=id2label, label2id={v: k for k, v in id2label.items()})
        return Dataset(examples), lambda model: DataCollatorForTokenClassification(tokenizer), kwargs
    if task == "CAUSAL_LM":
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        if "prompt" in rows.column_names:
            need(rows, "prompt", "completion")
            text_of(rows, "prompt"), text_of(rows, "completion")
            examples = []
            for r in rows:
                prompt = enc(r["prompt"])
                completion = enc(r["completion"], special=False) + eos
                ids = (prompt + completion)[:max_length]
                labels = ([IGNORE_INDEX] * len(prompt) + completion)[:max_length]
                examples.append({"input_ids": ids, "labels": labels})
        else:
            need(rows, "text")
            text_of(rows, "text")
            examples = [{"input_ids": (enc(r["text"]) + eos)[:max_length]} for r in rows]
            examples = [{**e, "labels": list(e["input_ids"])} for e in examples]
        # labels padded with -100 to the inputs' length (they have the same length before padding)
        return Dataset(examples), lambda model: DataCollatorForSeq2Seq(tokenizer), {}
    if task == "SEQ_2_SEQ_LM":
        source, target = ("prompt", "completion") if "prompt" in rows.column_names else ("text", "target")
        need(rows, source, target)
        text_of(rows, source), text_of(rows, target)
        examples = [{"input_ids": enc(r[source]), "labels": enc(r[target])} for r in rows]
        return Dataset(examples), lambda model: DataCollatorForSeq2Seq(tokenizer, model=model), {}
    raise ValueError(f"task {task} is not supported by `tinypeft train`")
