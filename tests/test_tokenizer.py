"""tinypeft.tokenization against transformers' AutoTokenizer.

Default tests compare with ids, masks and decodes that transformers produced (committed JSON written by
tests/fixtures/make_fixtures.py); `-m parity` tests compare live. Two tokenizers: the byte-level BPE
trained for the fixtures, and the WordPiece tokenizer of the real all-MiniLM-L6-v2 (fetched through pip).
"""

import json
from pathlib import Path

import numpy as np

import tinypeft as tp
import pytest

from tinypeft.tokenization import AutoTokenizer, BatchEncoding, PreTrainedTokenizer

FIXTURES = Path(__file__).parent / "fixtures"
BPE_DIR = FIXTURES / "tokenizers" / "bpe"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def minilm_dir():
    from tinypeft.hub import fetch_minilm, resolve_model_dir
    try:
        return resolve_model_dir(MINILM)
    except OSError:
        pass
    try:
        return fetch_minilm()
    except OSError as e:
        pytest.skip(f"all-MiniLM-L6-v2 not present and `python -m tinypeft.hub fetch-minilm` failed: {e}")


@pytest.fixture(scope="module", params=["bpe", "minilm"])
def named(request):
    """(tokenizer directory, reference JSON) for each tokenizer."""
    d = BPE_DIR if request.param == "bpe" else minilm_dir()
    ref = json.loads((FIXTURES / "reference" / f"tokenizer_{request.param}.json").read_text(encoding="utf-8"))
    return request.param, d, ref


def case_id(case):
    return json.dumps(case["args"], ensure_ascii=False)[:60]


def run_case(tok, args):
    args = dict(args)
    tok.padding_side = args.pop("padding_side", "right")
    try:
        return dict(tok(**args))
    finally:
        tok.padding_side = "right"


def test_encode_cases_match_transformers(named):
    name, d, ref = named
    tok = AutoTokenizer.from_pretrained(d)
    for case in ref["cases"]:
        got = run_case(tok, case["args"])
        assert got == case["expected"], f"{name}: {case_id(case)}"


def test_decode_matches_transformers(named):
    name, d, ref = named
    tok = AutoTokenizer.from_pretrained(d)
    for case in ref["decode"]:
        assert tok.decode(case["ids"], skip_special_tokens=case["skip_special_tokens"]) == case["expected"]
    bd = ref["batch_decode"]
    assert tok.batch_decode(bd["ids"], skip_special_tokens=True) == bd["expected"]
    assert tok.batch_decode(np.array(bd["ids"])) == bd["expected_with_special"]
    assert tok.convert_ids_to_tokens(ref["tokens"]["ids"]) == ref["tokens"]["tokens"]
    assert tok.convert_tokens_to_ids(ref["tokens"]["tokens"]) == ref["tokens"]["ids"]


def test_special_tokens_and_sizes(named):
    name, d, ref = named
    tok = AutoTokenizer.from_pretrained(d)
    for key, value in ref["special"].items():
        got = len(tok) if key == "len" else getattr(tok, key)
        assert got == value, f"{name}: {key}"


def test_bpe_basics():
    tok = AutoTokenizer.from_pretrained(BPE_DIR)
    assert isinstance(tok, PreTrainedTokenizer)
    assert tok.eos_token == tok.bos_token == "<|endoftext|>" and tok.pad_token == "<pad>"
    text = "Hello world! Café 東京 🙂"
    ids = tok.encode(text)
    assert tok.decode(ids) == text                     # byte-level BPE round-trips any text
    assert "token_type_ids" not in tok(text)
    enc = tok(["a", "abc def"], padding=True, return_tensors="np")
    assert isinstance(enc, BatchEncoding) and enc.input_ids.dtype == np.int64
    assert enc.attention_mask.tolist()[0][-1] == 0     # right padding by default
    tok.padding_side = "left"
    enc = tok(["a", "abc def"], padding=True, return_tensors="np")
    assert enc["input_ids"][0, 0] == tok.pad_token_id and enc["attention_mask"][0, 0] == 0
    with pytest.raises(ValueError):
        tok.padding_side = "middle"
    with pytest.raises(ValueError, match="different lengths"):
        tok(["a", "abc def"], return_tensors="np")
    with pytest.raises(ValueError, match="NumPy"):
        tok("a", return_tensors="tf")
    pt = tok(["a b", "c"], padding=True, return_tensors="pt")  # PyTorch-style code gets tinypeft Tensors
    assert isinstance(pt["input_ids"], tp.Tensor) and pt["input_ids"].dtype == np.int64


def test_pad_token_can_be_set_and_missing_pad_is_an_error(tmp_path):
    tok = AutoTokenizer.from_pretrained(BPE_DIR)
    tok.pad_token = None
    with pytest.raises(ValueError, match="padding token"):
        tok(["a", "bb"], padding=True)
    tok.pad_token = tok.eos_token          # the usual fix for GPT-2 style tokenizers
    assert tok.pad_token_id == tok.eos_token_id
    assert tok(["a", "bb cc"], padding=True)["input_ids"][0][-1] == tok.eos_token_id
    tok.pad_token_id = 1
    assert tok.pad_token == "<pad>"


def test_text_target_gives_labels():
    tok = AutoTokenizer.from_pretrained(BPE_DIR)
    enc = tok(["a b", "c"], text_target=["x", "y z"], padding=True)
    assert enc["labels"] == tok(["x", "y z"], padding=True)["input_ids"]


def test_save_pretrained_round_trip(named, tmp_path):
    name, d, ref = named
    tok = AutoTokenizer.from_pretrained(d)
    tok.padding_side = "left"
    tok.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["special_tokens_map.json", "tokenizer.json",
                                                         "tokenizer_config.json"]
    back = AutoTokenizer.from_pretrained(tmp_path)
    assert back.padding_side == "left"
    assert back.model_input_names == tok.model_input_names
    for attr in ("pad_token_id", "eos_token_id", "bos_token_id", "cls_token_id", "vocab_size", "model_max_length"):
        assert getattr(back, attr) == getattr(tok, attr)
    texts = ref["cases"][3]["args"]["text"]
    assert back(texts, padding=True) == tok(texts, padding=True)
    # A tokenizer.json with padding baked in (as MiniLM's) does not leak into plain calls after saving.
    assert json.loads((tmp_path / "tokenizer.json").read_text())["padding"] is None


def test_name_resolution_and_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TINYPEFT_HOME", str(tmp_path / "tp"))
    with pytest.raises(OSError, match="Cannot find"):
        AutoTokenizer.from_pretrained("org/none")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OSError, match="tokenizer.json"):
        AutoTokenizer.from_pretrained(empty)


def test_minilm_from_name():
    minilm_dir()
    tok = AutoTokenizer.from_pretrained(MINILM)
    enc = tok("Hello world!", "Second one.")
    assert enc["input_ids"][0] == tok.cls_token_id and enc["input_ids"][-1] == tok.sep_token_id
    assert enc["token_type_ids"][-1] == 1
    # tokenizer.json of MiniLM pads to 128 on its own; transformers (and we) switch that off.
    assert len(tok("Hello")["input_ids"]) == 3


# ----------------------------------------------------------------------------- live comparison

@pytest.mark.parity
def test_parity_live(named):
    import transformers
    name, d, ref = named
    theirs = transformers.AutoTokenizer.from_pretrained(str(d))
    ours = AutoTokenizer.from_pretrained(d)
    for case in ref["cases"]:
        args = dict(case["args"])
        side = args.pop("padding_side", "right")
        theirs.padding_side = side
        assert run_case(ours, case["args"]) == dict(theirs(**args)), f"{name}: {case_id(case)}"
    theirs.padding_side = "right"
    extra = ["", " ", "  leading and trailing  ", "UPPER lower MiXeD", "tab\tnew\nline", "<pad> inside",
             "a" * 100, "Ünïcödé ßtraße 🤗🤗", "12345 67.89", "<|endoftext|><|endoftext|>"]
    for kwargs in ({}, {"padding": True}, {"padding": "max_length", "max_length": 16, "truncation": True},
                   {"text_pair": extra[::-1], "padding": True, "truncation": True, "max_length": 20}):
        assert dict(ours(extra, **kwargs)) == dict(theirs(extra, **kwargs)), kwargs
        a = ours(extra, **kwargs, return_tensors="np") if kwargs.get("padding") else None
        if a is not None:
            b = theirs(extra, **kwargs, return_tensors="np")
            for k in b:
                np.testing.assert_array_equal(a[k], b[k])
    ids = theirs(extra, padding=True)["input_ids"]
    for skip in (False, True):
        assert ours.batch_decode(ids, skip_special_tokens=skip) == theirs.batch_decode(ids, skip_special_tokens=skip)
    for text in extra:
        assert ours.tokenize(text) == theirs.tokenize(text)
    assert ours.get_vocab() == theirs.get_vocab()
