"""generate() against transformers' generate() on the tiny fixture models: the same token ids, option by option.

Every case runs both libraries on the same left-padded batch (decoder-only) or padded encoder batch (t5,
mt5). The eos ids are chosen from tokens the fixture actually produces, so eos lists, min_new_tokens and
beam search's finished hypotheses are exercised rather than never reached.
"""
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from tinypeft.models import AutoModelForCausalLM, AutoModelForSeq2SeqLM

pytestmark = pytest.mark.parity

MODELS = Path(__file__).parent / "fixtures" / "models"
CAUSAL = ["gpt2", "opt", "llama"]
SEQ2SEQ = ["t5", "mt5"]

# (id, options); "EOS" is replaced by two ids the model generates greedily, "EOS1" by one of them
CASES = [
    ("greedy", {}),
    ("max_length", {"max_length": 11, "max_new_tokens": None}),
    ("repetition_penalty", {"repetition_penalty": 1.8}),
    ("repetition_penalty_below_1", {"repetition_penalty": 0.7}),
    ("no_repeat_ngram_2", {"no_repeat_ngram_size": 2}),
    ("no_repeat_ngram_1", {"no_repeat_ngram_size": 1}),
    ("eos_list", {"eos_token_id": "EOS"}),
    ("min_new_tokens", {"eos_token_id": "EOS", "min_new_tokens": 5}),
    ("min_length", {"eos_token_id": "EOS", "min_length": 9}),
    ("penalty_ngram_eos", {"eos_token_id": "EOS", "repetition_penalty": 1.3, "no_repeat_ngram_size": 3}),
    ("beams_2", {"num_beams": 2}),
    ("beams_3_eos", {"num_beams": 3, "eos_token_id": "EOS"}),
    ("beams_4_eos1", {"num_beams": 4, "eos_token_id": "EOS1"}),
    ("beams_4_early_stopping", {"num_beams": 4, "eos_token_id": "EOS", "early_stopping": True}),
    ("beams_3_never", {"num_beams": 3, "eos_token_id": "EOS", "early_stopping": "never"}),
    ("beams_3_length_penalty", {"num_beams": 3, "eos_token_id": "EOS", "length_penalty": 2.0}),
    ("beams_3_negative_length_penalty", {"num_beams": 3, "eos_token_id": "EOS", "length_penalty": -1.0}),
    ("beams_4_return_3", {"num_beams": 4, "num_return_sequences": 3, "eos_token_id": "EOS"}),
    ("beams_2_return_2_ngram", {"num_beams": 2, "num_return_sequences": 2, "no_repeat_ngram_size": 2}),
    ("beams_3_penalty_min_new", {"num_beams": 3, "eos_token_id": "EOS", "repetition_penalty": 1.5,
                                 "min_new_tokens": 4}),
]


def _inputs(name):
    if name in SEQ2SEQ:
        ids = np.array([[5, 6, 7, 8, 9, 10, 0], [11, 12, 13, 0, 1, 1, 1]])
        mask = np.array([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0]])
    else:
        ids = np.array([[5, 6, 7, 8, 9, 10], [1, 1, 11, 12, 13, 14]])
        mask = np.array([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]])
    return ids, mask


def _load(name):
    if name in SEQ2SEQ:
        ours = AutoModelForSeq2SeqLM.from_pretrained(MODELS / name)
        theirs = transformers.AutoModelForSeq2SeqLM.from_pretrained(MODELS / name)
    else:
        ours = AutoModelForCausalLM.from_pretrained(MODELS / name)
        theirs = transformers.AutoModelForCausalLM.from_pretrained(MODELS / name)
    return ours, theirs.eval()


@pytest.fixture(scope="module", params=CAUSAL + SEQ2SEQ)
def pair(request):
    name = request.param
    ours, theirs = _load(name)
    ids, mask = _inputs(name)
    with torch.no_grad():
        greedy = theirs.generate(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), max_new_tokens=12,
                                 eos_token_id=None).numpy()
    new = greedy[:, -12:]
    eos = sorted({int(new[0, 2]), int(new[1, 4])})  # tokens that do come out, a few steps in
    return name, ours, theirs, ids, mask, eos


def _options(opts, eos):
    opts = {"max_new_tokens": 12, **opts}
    if opts.get("eos_token_id") == "EOS":
        opts["eos_token_id"] = eos
    elif opts.get("eos_token_id") == "EOS1":
        opts["eos_token_id"] = eos[0]
    return {k: v for k, v in opts.items() if v is not None}


@pytest.mark.parametrize("case,opts", CASES, ids=[c[0] for c in CASES])
def test_generate_matches_transformers(pair, case, opts):
    name, ours, theirs, ids, mask, eos = pair
    opts = _options(opts, eos)
    with torch.no_grad():
        want = theirs.generate(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), **opts).numpy()
    got = ours.generate(input_ids=ids, attention_mask=mask, **opts).numpy()
    assert got.shape == want.shape, f"{name} {case}: shape {got.shape} != transformers' {want.shape}"
    np.testing.assert_array_equal(got, want, err_msg=f"{name} {case}")


def test_the_cases_reach_eos(pair):
    """Guard against a vacuous parity: with the chosen eos ids some rows do stop early."""
    name, ours, theirs, ids, mask, eos = pair
    out = ours.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12, eos_token_id=eos).numpy()
    assert np.isin(out[:, -12:], eos).any(), name


def test_stop_strings_match_transformers():
    """stop_strings with the fixtures' byte-level BPE tokenizer: the same rows stop at the same token."""
    ours, theirs = _load("gpt2")
    tok = transformers.AutoTokenizer.from_pretrained(MODELS / "gpt2")
    from tinypeft.tokenization import AutoTokenizer

    our_tok = AutoTokenizer.from_pretrained(MODELS / "gpt2")
    ids, mask = _inputs("gpt2")
    ids, mask = ids[:1], mask[:1]  # one row: transformers does not pad rows a stop string ended without eos
    with torch.no_grad():
        full = theirs.generate(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), max_new_tokens=12,
                               eos_token_id=None).numpy()
    # a stop string made of the end of one generated token and the start of the next
    a, b = tok.decode(full[0, 9:10]), tok.decode(full[0, 10:11])
    stop = (a[-2:] if len(a) >= 2 else a) + b[:1]
    opts = dict(max_new_tokens=12, stop_strings=[stop, "zzzz-never"], eos_token_id=None)
    with torch.no_grad():
        want = theirs.generate(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), tokenizer=tok,
                               **opts).numpy()
    got = ours.generate(input_ids=ids, attention_mask=mask, tokenizer=our_tok, **opts).numpy()
    np.testing.assert_array_equal(got, want)
    assert want.shape[1] < full.shape[1], "the stop string should have ended generation early"


def test_logits_processors_match_transformers():
    """Each processor on random scores and ids, against transformers' class of the same name."""
    from transformers.generation import logits_process as T

    from tinypeft.models import logits_process as P

    rng = np.random.default_rng(0)
    scores = (rng.standard_normal((4, 50)) * 3).astype(np.float32)
    ids = rng.integers(0, 50, (4, 12))
    ids[:, 6:9] = ids[:, 2:5]  # a repeated trigram, and the last two tokens start it again: bans to make
    ids[:, 10:12] = ids[:, 2:4]
    pairs = [
        (P.RepetitionPenaltyLogitsProcessor(1.7), T.RepetitionPenaltyLogitsProcessor(1.7)),
        (P.RepetitionPenaltyLogitsProcessor(0.6, prompt_ignore_length=np.array([0, 3, 5, 11])),
         T.RepetitionPenaltyLogitsProcessor(0.6, prompt_ignore_length=torch.tensor([0, 3, 5, 11]))),
        (P.NoRepeatNGramLogitsProcessor(1), T.NoRepeatNGramLogitsProcessor(1)),
        (P.NoRepeatNGramLogitsProcessor(3), T.NoRepeatNGramLogitsProcessor(3)),
        (P.MinLengthLogitsProcessor(13, [3, 7]), T.MinLengthLogitsProcessor(13, [3, 7])),
        (P.MinNewTokensLengthLogitsProcessor(5, 8, [3]), T.MinNewTokensLengthLogitsProcessor(5, 8, [3])),
        (P.TemperatureLogitsWarper(0.7), T.TemperatureLogitsWarper(0.7)),
        (P.TopKLogitsWarper(5), T.TopKLogitsWarper(5)),
        (P.TopKLogitsWarper(3, min_tokens_to_keep=4), T.TopKLogitsWarper(3, min_tokens_to_keep=4)),
        (P.TopPLogitsWarper(0.8), T.TopPLogitsWarper(0.8)),
        (P.TopPLogitsWarper(0.3, min_tokens_to_keep=3), T.TopPLogitsWarper(0.3, min_tokens_to_keep=3)),
    ]
    for ours, theirs in pairs:
        got = ours(ids, scores.copy())
        want = theirs(torch.tensor(ids), torch.tensor(scores)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=type(ours).__name__)
    assert np.isinf(P.NoRepeatNGramLogitsProcessor(3)(ids, scores)).any()


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_stop_string_criterion_matches_transformers(name):
    """On every prefix of some text, our StopStringCriteria and transformers' agree, per stop string."""
    from transformers.generation.stopping_criteria import StopStringCriteria as TheirStop

    from tinypeft.models.stopping_criteria import StopStringCriteria
    from tinypeft.tokenization import AutoTokenizer

    tok = transformers.AutoTokenizer.from_pretrained(MODELS / name)
    ours_tok = AutoTokenizer.from_pretrained(MODELS / name)
    text = "the cat sat on the mat, then stopped; stop! Über 3.14 cats"
    ids = ours_tok(text, add_special_tokens=False)["input_ids"]
    assert ids == tok(text, add_special_tokens=False)["input_ids"]
    for stop in ["sat on", "t, th", "stop", "!", " Üb", "14 c", "cats", "nowhere"]:
        ours, theirs = StopStringCriteria(ours_tok, [stop]), TheirStop(tok, [stop])
        for n in range(1, len(ids) + 1):
            prefix = np.array([ids[:n]])
            assert ours(prefix)[0] == bool(theirs(torch.tensor(prefix), None)[0]), (name, stop, n)


def test_text_streamer_emits_transformers_chunks():
    """The same ids into both TextStreamers give the same printed chunks (word holding, newlines, the end)."""
    from transformers import TextStreamer as TheirStreamer

    from tinypeft.models.streamers import TextStreamer
    from tinypeft.tokenization import AutoTokenizer

    def recorder(cls, tokenizer):
        class Recorder(cls):
            def on_finalized_text(self, text, stream_end=False):
                self.chunks.append((text, stream_end))

        r = Recorder(tokenizer, skip_prompt=True)
        r.chunks = []
        return r

    tok = transformers.AutoTokenizer.from_pretrained(MODELS / "gpt2")
    text = "Once upon a time,\nthere was a cat. It sat.\n\nThe end: 42 cats, Über!"
    ids = tok(text)["input_ids"]
    ours, theirs = recorder(TextStreamer, AutoTokenizer.from_pretrained(MODELS / "gpt2")), recorder(TheirStreamer, tok)
    for s in (ours, theirs):
        s.put(np.array([[1, 2, 3]]) if s is ours else torch.tensor([[1, 2, 3]]))
        for i in ids:
            s.put(np.array([i]) if s is ours else torch.tensor([i]))
        s.end()
    assert ours.chunks == theirs.chunks
