"""tinypeft.data: datasets from lists and files, and the collators' padding and -100 placement.

Expected batches are written out by hand from the tokenizer's ids, not from the collators' own helpers."""
import json
from pathlib import Path

import numpy as np
import pytest

from tinypeft.data import (
    DataCollatorForCompletionOnlyLM,
    DataCollatorForLanguageModeling,
    DataCollatorForSeq2Seq,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    Dataset,
    DatasetDict,
    default_data_collator,
    load_dataset,
)
from tinypeft.tokenization import AutoTokenizer

BPE_DIR = Path(__file__).parent / "fixtures" / "tokenizers" / "bpe"


@pytest.fixture(scope="module")
def tok():
    return AutoTokenizer.from_pretrained(BPE_DIR)


ROWS = [{"text": "good film", "label": 1}, {"text": "bad plot", "label": 0}, {"text": "fine", "label": 1}]


# -- datasets -------------------------------------------------------------------------------------------------
def test_from_list_reads_rows_and_columns():
    ds = Dataset.from_list(ROWS)
    assert len(ds) == 3 and ds.column_names == ["text", "label"]
    assert ds[1] == {"text": "bad plot", "label": 0}
    assert ds["label"] == [1, 0, 1]
    assert ds[0:2] == {"text": ["good film", "bad plot"], "label": [1, 0]}
    assert Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]})[1] == {"text": "b", "label": 1}


def test_from_jsonl_json_and_csv_agree(tmp_path):
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in ROWS) + "\n", encoding="utf-8")  # a blank line is skipped
    array = tmp_path / "d.json"
    array.write_text(json.dumps(ROWS), encoding="utf-8")
    csv = tmp_path / "d.csv"
    csv.write_text("text,label\ngood film,1\nbad plot,0\nfine,1\n", encoding="utf-8")
    for ds in (Dataset.from_jsonl(jsonl), Dataset.from_json(array), Dataset.from_csv(csv)):
        assert ds.to_list() == ROWS  # csv: the all-integer column becomes ints
    splits = load_dataset("json", data_files={"train": str(jsonl), "test": [str(array), str(array)]})
    assert isinstance(splits, DatasetDict) and len(splits["train"]) == 3 and len(splits["test"]) == 6
    assert load_dataset("csv", data_files=str(csv), split="train").to_list() == ROWS


def test_bad_jsonl_line_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        Dataset.from_jsonl(path)
    with pytest.raises(ValueError, match="'json' or 'csv'"):
        load_dataset("parquet", data_files=str(path))


def test_map_single_and_batched_leave_the_original():
    ds = Dataset.from_list(ROWS)
    upper = ds.map(lambda ex: {"text": ex["text"].upper(), "n": len(ex["text"])}, remove_columns=["label"])
    assert upper.column_names == ["text", "n"] and upper[0] == {"text": "GOOD FILM", "n": 9}
    assert ds[0]["text"] == "good film"  # unchanged
    words = ds.map(lambda b: {"word": [w for t in b["text"] for w in t.split()]}, batched=True, batch_size=2)
    assert words["word"] == ["good", "film", "bad", "plot", "fine"]  # more rows than went in
    with pytest.raises(ValueError, match="remove_columns"):
        ds.map(lambda ex: ex, remove_columns=["nope"])


def test_train_test_split_sizes_and_seed():
    ds = Dataset.from_list([{"i": i} for i in range(10)])
    a = ds.train_test_split(test_size=0.25, seed=3)
    b = ds.train_test_split(test_size=0.25, seed=3)
    assert len(a["test"]) == 3 and len(a["train"]) == 7  # ceil(2.5) rows go to test, as `datasets`
    assert a["test"]["i"] == b["test"]["i"]
    assert sorted(a["train"]["i"] + a["test"]["i"]) == list(range(10))
    assert ds.train_test_split(test_size=2, shuffle=False)["test"]["i"] == [8, 9]
    with pytest.raises(ValueError, match="test_size"):
        ds.train_test_split(test_size=1.5)


# -- collators ------------------------------------------------------------------------------------------------
def test_causal_lm_collator_pads_and_ignores_padding(tok):
    a, b = tok("hello world")["input_ids"], tok("a")["input_ids"]
    batch = DataCollatorForLanguageModeling(tok, mlm=False)([tok("hello world"), tok("a")])
    pad = tok.pad_token_id
    assert batch["input_ids"].tolist() == [a, b + [pad] * (len(a) - len(b))]
    assert batch["attention_mask"].tolist() == [[1] * len(a), [1] * len(b) + [0] * (len(a) - len(b))]
    assert batch["labels"].tolist() == [a, b + [-100] * (len(a) - len(b))]
    assert all(v.dtype == np.int64 for v in batch.values())


def test_causal_lm_collator_keeps_eos_label_when_pad_is_eos(tok):
    """pad = eos (GPT-2's usual set-up): the real end-of-text keeps its label, only padding gets -100."""
    eos = tok.eos_token_id
    features = [{"input_ids": [5, 6, eos]}, {"input_ids": [7, eos]}]

    class EosPad:  # the same tokenizer with pad_token = eos_token
        pad_token_id, pad_token_type_id, padding_side = eos, 0, "right"

    batch = DataCollatorForLanguageModeling(EosPad(), mlm=False)(features)
    assert batch["labels"].tolist() == [[5, 6, eos], [7, eos, -100]]


def test_left_padding(tok):
    tok_left = AutoTokenizer.from_pretrained(BPE_DIR, padding_side="left")
    batch = DataCollatorForLanguageModeling(tok_left, mlm=False)([{"input_ids": [5, 6, 7]}, {"input_ids": [8]}])
    pad = tok.pad_token_id
    assert batch["input_ids"].tolist() == [[5, 6, 7], [pad, pad, 8]]
    assert batch["labels"].tolist() == [[5, 6, 7], [-100, -100, 8]]


def test_pad_to_multiple_of(tok):
    batch = DataCollatorForLanguageModeling(tok, mlm=False, pad_to_multiple_of=4)([{"input_ids": [5, 6, 7, 8, 9]}])
    assert batch["input_ids"].shape == (1, 8) and batch["labels"][0, 5:].tolist() == [-100] * 3


def test_completion_only_masks_the_prompt(tok):
    prompt, answer = "Q: 2+2? ### Answer:", " four"
    ids = tok(prompt + answer)["input_ids"]
    n_prompt = len(tok(prompt)["input_ids"])
    assert ids[:n_prompt] == tok(prompt)["input_ids"]  # the answer starts on a token boundary here
    collator = DataCollatorForCompletionOnlyLM("### Answer:", tok)  # mid-sentence it is " ###...": both are tried
    batch = collator([{"input_ids": ids}])
    assert batch["labels"][0].tolist() == [-100] * n_prompt + ids[n_prompt:]
    with pytest.warns(UserWarning, match="not found"):
        batch = collator([{"input_ids": tok("no template")["input_ids"]}])
    assert (batch["labels"] == -100).all()


def test_completion_only_with_ids_and_padding(tok):
    collator = DataCollatorForCompletionOnlyLM([9, 9], tok)
    batch = collator([{"input_ids": [5, 9, 9, 6, 7]}, {"input_ids": [9, 9, 8]}])
    assert batch["labels"].tolist() == [[-100, -100, -100, 6, 7], [-100, -100, 8, -100, -100]]


def test_mlm_needs_a_mask_token(tok):
    with pytest.raises(ValueError, match="mlm=False"):
        DataCollatorForLanguageModeling(tok)  # mlm=True is transformers' default


def test_padding_collator_for_classification(tok):
    features = [{**tok("good film"), "label": 1}, {**tok("bad"), "label": 0}]
    batch = DataCollatorWithPadding(tok)(features)
    n = len(features[0]["input_ids"])
    assert batch["input_ids"].shape == (2, n)
    short = features[1]["input_ids"]
    assert batch["input_ids"][1].tolist() == short + [tok.pad_token_id] * (n - len(short))
    assert batch["labels"].tolist() == [1, 0] and "label" not in batch


def test_seq2seq_collator_pads_labels_with_label_pad(tok):
    features = [{"input_ids": [5, 6], "labels": [7, 8, 9]}, {"input_ids": [5, 6, 7, 8], "labels": [7]}]

    class ShiftRight:
        def prepare_decoder_input_ids_from_labels(self, labels):  # T5: start token 0, -100 -> pad 0
            out = np.zeros_like(labels)
            out[:, 1:] = np.where(labels[:, :-1] == -100, 0, labels[:, :-1])
            return out

    batch = DataCollatorForSeq2Seq(tok, model=ShiftRight())(features)
    pad = tok.pad_token_id
    assert batch["input_ids"].tolist() == [[5, 6, pad, pad], [5, 6, 7, 8]]
    assert batch["labels"].tolist() == [[7, 8, 9], [7, -100, -100]]
    assert batch["decoder_input_ids"].tolist() == [[0, 7, 8], [0, 7, 0]]
    batch = DataCollatorForSeq2Seq(tok, label_pad_token_id=0)(features)
    assert batch["labels"].tolist() == [[7, 8, 9], [7, 0, 0]] and "decoder_input_ids" not in batch


def test_token_classification_labels_follow_the_inputs(tok):
    features = [{"input_ids": [5, 6, 7], "labels": [1, 2, 0]}, {"input_ids": [5], "labels": [2]}]
    batch = DataCollatorForTokenClassification(tok)(features)
    assert batch["labels"].tolist() == [[1, 2, 0], [2, -100, -100]]
    left = AutoTokenizer.from_pretrained(BPE_DIR, padding_side="left")
    batch = DataCollatorForTokenClassification(left)(features)
    assert batch["labels"].tolist() == [[1, 2, 0], [-100, -100, 2]]
    assert batch["input_ids"][1].tolist() == [left.pad_token_id] * 2 + [5]


def test_default_collator_and_text_columns():
    batch = default_data_collator([{"x": [1.0, 2.0], "label": 0}, {"x": [3.0, 4.0], "label": 1}])
    assert batch["x"].shape == (2, 2) and batch["labels"].tolist() == [0, 1]
    with pytest.raises(ValueError, match="holds text"):
        default_data_collator([{"text": "a"}])


def test_collator_without_pad_token_says_how_to_fix():
    class NoPad:
        pad_token_id, pad_token_type_id, padding_side = None, 0, "right"

    with pytest.raises(ValueError, match="pad_token = tokenizer.eos_token"):
        DataCollatorForLanguageModeling(NoPad(), mlm=False)([{"input_ids": [1, 2]}])
