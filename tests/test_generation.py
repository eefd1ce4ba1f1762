"""generate()'s parts, each against a hand-computed answer: processors, stopping criteria, beam search,
GenerationConfig, streamers, argument checks. tests/test_generation_parity.py compares the whole with
transformers' generate (-m parity)."""
import io
import json
import logging
import shutil
import threading
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest

import tinypeft as tp
from tinypeft.models import AutoModelForCausalLM, AutoModelForSeq2SeqLM, GenerationConfig
from tinypeft.models.beam_search import beam_search
from tinypeft.models.generation import sample_next_tokens
from tinypeft.models.logits_process import (
    LogitsProcessorList, MinLengthLogitsProcessor, MinNewTokensLengthLogitsProcessor, NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper,
)
from tinypeft.models.stopping_criteria import (
    EosTokenCriteria, MaxLengthCriteria, StoppingCriteriaList, StopStringCriteria,
)
from tinypeft.models.streamers import TextIteratorStreamer, TextStreamer

MODELS = Path(__file__).parent / "fixtures" / "models"
INF = np.inf


def f32(x):
    return np.array(x, dtype=np.float32)


@pytest.fixture(scope="module")
def gpt2():
    return AutoModelForCausalLM.from_pretrained(MODELS / "gpt2")


@pytest.fixture(scope="module")
def tok():
    return tp.AutoTokenizer.from_pretrained(MODELS / "gpt2")


# ----------------------------------------------------------------------------------------- logits processors
def test_repetition_penalty_divides_positive_and_multiplies_negative_scores():
    scores = f32([[2.0, -1.0, 0.5, 3.0]])
    out = RepetitionPenaltyLogitsProcessor(2.0)(np.array([[0, 1, 1]]), scores)
    np.testing.assert_array_equal(out, f32([[1.0, -2.0, 0.5, 3.0]]))  # token 1 twice: penalised once
    # the first column is padding: token 0 there is not penalised
    out = RepetitionPenaltyLogitsProcessor(2.0, prompt_ignore_length=np.array([1]))(np.array([[0, 1, 3]]), scores)
    np.testing.assert_array_equal(out, f32([[2.0, -2.0, 0.5, 1.5]]))
    np.testing.assert_array_equal(scores, f32([[2.0, -1.0, 0.5, 3.0]]))  # the input is not modified
    with pytest.raises(ValueError, match="penalty"):
        RepetitionPenaltyLogitsProcessor(0.0)


def test_no_repeat_ngram_bans_the_token_that_would_repeat_an_ngram():
    scores = np.zeros((1, 5), np.float32)
    ids = np.array([[1, 2, 3, 1]])  # the next bigram starts with 1; (1, 2) was seen -> ban 2
    np.testing.assert_array_equal(NoRepeatNGramLogitsProcessor(2)(ids, scores), f32([[0, 0, -INF, 0, 0]]))
    # trigram prefix (3, 1) never started a trigram: nothing banned
    np.testing.assert_array_equal(NoRepeatNGramLogitsProcessor(3)(ids, scores), scores)
    # unigrams: every token seen is banned
    np.testing.assert_array_equal(NoRepeatNGramLogitsProcessor(1)(ids, scores), f32([[0, -INF, -INF, -INF, 0]]))
    # shorter than n: nothing to ban; rows are independent
    np.testing.assert_array_equal(NoRepeatNGramLogitsProcessor(5)(ids, scores), scores)
    two = NoRepeatNGramLogitsProcessor(2)(np.array([[1, 2, 1], [4, 0, 4]]), np.zeros((2, 5), np.float32))
    np.testing.assert_array_equal(two, f32([[0, 0, -INF, 0, 0], [-INF, 0, 0, 0, 0]]))


def test_min_length_and_min_new_tokens_hide_every_eos_until_reached():
    scores = f32([[1.0, 2.0, 3.0, 4.0]])
    ids3, ids5 = np.zeros((1, 3), np.int64), np.zeros((1, 5), np.int64)
    banned = f32([[1.0, -INF, 3.0, -INF]])
    np.testing.assert_array_equal(MinLengthLogitsProcessor(4, [1, 3])(ids3, scores), banned)
    np.testing.assert_array_equal(MinLengthLogitsProcessor(4, [1, 3])(ids5, scores), scores)
    new = MinNewTokensLengthLogitsProcessor(prompt_length_to_skip=2, min_new_tokens=2, eos_token_id=[1, 3])
    np.testing.assert_array_equal(new(ids3, scores), banned)  # 1 new token < 2
    np.testing.assert_array_equal(new(np.zeros((1, 4), np.int64), scores), scores)  # 2 new tokens


def test_temperature_top_k_top_p():
    scores = f32([[1.0, 3.0, 2.0, 0.0]])
    np.testing.assert_allclose(TemperatureLogitsWarper(2.0)(None, scores), f32([[0.5, 1.5, 1.0, 0.0]]))
    np.testing.assert_array_equal(TopKLogitsWarper(2)(None, scores), f32([[-INF, 3.0, 2.0, -INF]]))
    ties = f32([[2.0, 2.0, 1.0]])  # a score tied with the k-th stays
    np.testing.assert_array_equal(TopKLogitsWarper(1)(None, ties), f32([[2.0, 2.0, -INF]]))
    np.testing.assert_array_equal(TopKLogitsWarper(1, min_tokens_to_keep=3)(None, scores), f32([[1.0, 3.0, 2.0, -INF]]))
    probs = f32([[0.5, 0.3, 0.15, 0.05]])
    # ascending: 0.05, 0.15 (cumulative 0.2 <= 1 - 0.75) go; 0.3 brings it to 0.5 > 0.25 and stays
    np.testing.assert_array_equal(np.isfinite(TopPLogitsWarper(0.75)(None, np.log(probs))), [[1, 1, 0, 0]])
    np.testing.assert_array_equal(np.isfinite(TopPLogitsWarper(0.75, min_tokens_to_keep=3)(None, np.log(probs))),
                                  [[1, 1, 1, 0]])
    np.testing.assert_array_equal(np.isfinite(TopPLogitsWarper(0.0)(None, np.log(probs))), [[1, 0, 0, 0]])
    with pytest.raises(ValueError, match="top_k"):
        TopKLogitsWarper(0)
    with pytest.raises(ValueError, match="temperature"):
        TemperatureLogitsWarper(0.0)


def test_processors_apply_in_list_order():
    scores = f32([[1.0, 3.0, 2.0, 0.0]])
    # temperature then top-k, as generate orders them; top-k after temperature keeps the same tokens
    out = LogitsProcessorList([TemperatureLogitsWarper(0.5), TopKLogitsWarper(2)])(None, scores)
    np.testing.assert_array_equal(out, f32([[-INF, 6.0, 4.0, -INF]]))


def test_sampling_draws_in_proportion_and_never_a_filtered_token():
    with np.errstate(divide="ignore"):
        scores = np.log(f32([[0.6, 0.3, 0.1, 0.0]]))  # the last token has probability 0
    draws = sample_next_tokens(np.repeat(scores, 20000, axis=0), np.random.default_rng(0))
    freq = np.bincount(draws, minlength=4) / 20000
    np.testing.assert_allclose(freq, [0.6, 0.3, 0.1, 0.0], atol=0.015)
    assert freq[3] == 0
    # u close to 1 still lands on the last token with probability > 0
    top1 = TopKLogitsWarper(1)(None, f32([[0.0, 5.0, 1.0]]))
    assert (sample_next_tokens(np.repeat(top1, 1000, axis=0), np.random.default_rng(1)) == 1).all()


# ----------------------------------------------------------------------------------------- stopping criteria
def test_max_length_and_eos_criteria():
    ids = np.array([[4, 5, 2], [4, 5, 7]])
    np.testing.assert_array_equal(MaxLengthCriteria(3)(ids), [True, True])
    np.testing.assert_array_equal(MaxLengthCriteria(4)(ids), [False, False])
    np.testing.assert_array_equal(EosTokenCriteria([2, 9])(ids), [True, False])
    np.testing.assert_array_equal(EosTokenCriteria(7)(ids), [False, True])
    both = StoppingCriteriaList([MaxLengthCriteria(4), EosTokenCriteria(2)])
    np.testing.assert_array_equal(both(ids), [True, False])
    assert both.max_length == 4


class _Decoder:
    def decode(self, tokens):
        return "".join(tokens)


class _WordTokenizer:
    """A vocabulary of plain strings (no byte-level mapping): token text is the token itself."""

    def __init__(self, vocab):
        self.vocab = vocab
        self.backend_tokenizer = type("Backend", (), {"decoder": None})()

    def convert_ids_to_tokens(self, i):
        return self.vocab[i]


@pytest.mark.parametrize("tokens,stops", [
    (["st", "op"], True), (["stop"], True), (["st", "opera"], True), (["sto", "pper"], True),
    (["las", "topper"], True), (["s", "to", "pped"], True), (["x", "s", "t", "o", "p"], True),
    (["stop", "at"], False), (["st", "op", "at"], False), (["st", "opera", "tion"], False), (["st"], False),
    (["xstop"], False),  # inside the newest token, not at its start: transformers does not match it either
])
def test_stop_string_must_overlap_the_newest_token(tokens, stops):
    vocab = sorted(set(tokens))
    crit = StopStringCriteria(_WordTokenizer(vocab), ["stop"])
    ids = np.array([[vocab.index(t) for t in tokens]])
    assert crit(ids)[0] == stops


def test_stop_strings_on_a_byte_level_vocabulary(tok):
    """GPT-2's byte-level tokens ('Ġthe') are read as the bytes they stand for (' the')."""
    ids = tok("the cat sat on the mat")["input_ids"]
    text = tok.decode(ids)
    crit = StopStringCriteria(tok, ["sat on", "zebra"])
    ends = [crit(np.array([ids[:n]]))[0] for n in range(1, len(ids) + 1)]
    first = ends.index(True)
    assert "sat on" in tok.decode(ids[:first + 1]) and "sat on" not in tok.decode(ids[:first]), text
    assert sum(ends) == 1  # only the token that completes it


# ----------------------------------------------------------------------------------------- beam search
class _ToyStep:
    """A 4-token 'model' (0 = eos, 1 = A, 2 = B, 3 = start) whose next-token probabilities depend on the last token.

    After the start: A 0.5, B 0.4, eos 0.1. After A: A 0.4, B 0.3, eos 0.3. After B: eos 0.9, A 0.05, B 0.05.
    Greedy takes A then A (0.5 * 0.4 = 0.2); the best sequence is B eos (0.4 * 0.9 = 0.36).
    """
    table = {3: [0.1, 0.5, 0.4, 0.0], 1: [0.3, 0.4, 0.3, 0.0], 2: [0.9, 0.05, 0.05, 0.0], 0: [1.0, 0, 0, 0]}

    def __call__(self, ids):
        with np.errstate(divide="ignore"):
            return np.log(f32([self.table[int(t)] for t in ids[:, -1]]))

    def reorder(self, rows):
        pass


def test_beam_search_finds_the_better_sequence_greedy_misses():
    gc = GenerationConfig(num_beams=2, num_return_sequences=2, length_penalty=0.0)
    prompt = np.full((2, 1), 3)  # one prompt, repeated for 2 beams
    crit = StoppingCriteriaList([MaxLengthCriteria(3), EosTokenCriteria(0)])
    out = beam_search(_ToyStep(), prompt, LogitsProcessorList(), crit, gc, eos=[0], pad=0, max_length=3)
    # best: B eos (0.36); then A A (0.2) ended by max_length. A eos (0.15) is third.
    np.testing.assert_array_equal(out, [[3, 2, 0], [3, 1, 1]])
    greedy = np.array([[3]])
    for _ in range(2):
        greedy = np.concatenate([greedy, _ToyStep()(greedy).argmax(-1)[:, None]], 1)
    np.testing.assert_array_equal(greedy, [[3, 1, 1]])


def test_length_penalty_favours_longer_hypotheses():
    """With length_penalty 1 the score is the mean log-probability: eos at step one (0.1) loses to longer ones."""
    crit = StoppingCriteriaList([MaxLengthCriteria(3), EosTokenCriteria(0)])
    prompt = np.full((3, 1), 3)
    gc = GenerationConfig(num_beams=3, num_return_sequences=3, length_penalty=1.0)
    out = beam_search(_ToyStep(), prompt, LogitsProcessorList(), crit, gc, eos=[0], pad=0, max_length=3)
    # step 1 finishes [eos] (log 0.1); step 2: B eos log(0.36)/2 = -0.51, A A log(0.2)/2 = -0.80, A eos/A B -0.95
    np.testing.assert_array_equal(out[:2], [[3, 2, 0], [3, 1, 1]])


# ----------------------------------------------------------------------------------------- generate()
def test_unknown_arguments_raise_type_error_naming_them(gpt2):
    ids = np.array([[5, 6, 7]])
    with pytest.raises(TypeError, match="'banana'"):
        gpt2.generate(input_ids=ids, banana=1)
    with pytest.raises(NotImplementedError, match="typical_p"):
        gpt2.generate(input_ids=ids, typical_p=0.5)
    gpt2.generate(input_ids=ids, typical_p=1.0, max_new_tokens=2)  # the neutral value is harmless
    with pytest.raises(NotImplementedError, match="prefix_allowed_tokens_fn"):
        gpt2.generate(input_ids=ids, prefix_allowed_tokens_fn=lambda b, s: [1])
    with pytest.raises(ValueError, match="num_return_sequences"):
        gpt2.generate(input_ids=ids, num_return_sequences=2)  # greedy makes one
    with pytest.raises(ValueError, match="stop_strings.*tokenizer"):
        gpt2.generate(input_ids=ids, stop_strings=["x"])
    with pytest.raises(ValueError, match="max_length"):
        gpt2.generate(input_ids=ids, max_length=3)
    with pytest.raises(ValueError, match="temperature"):
        gpt2.generate(input_ids=ids, do_sample=True, temperature=0.0)
    gpt2.generate(input_ids=ids, temperature=0.0, max_new_tokens=2)  # greedy ignores it, as transformers does
    with pytest.raises(ValueError, match="repetition_penalty"):
        gpt2.generate(input_ids=ids, repetition_penalty=0)


def test_options_change_the_output(gpt2):
    """The options the issue found ignored now act: each gives tokens that greedy does not."""
    ids = np.array([[5, 6, 7, 8]])
    greedy = gpt2.generate(input_ids=ids, max_new_tokens=10).numpy()
    assert len(set(greedy[0, 4:])) < 10  # the random fixture repeats itself greedily
    penalised = gpt2.generate(input_ids=ids, max_new_tokens=10, repetition_penalty=5.0).numpy()
    assert len(set(penalised[0, 4:])) == 10 and not np.array_equal(penalised, greedy)
    no_repeat = gpt2.generate(input_ids=ids, max_new_tokens=10, no_repeat_ngram_size=1).numpy()
    assert len(set(no_repeat[0])) == 14
    beams = gpt2.generate(input_ids=ids, max_new_tokens=10, num_beams=4, num_return_sequences=4).numpy()
    assert beams.shape[0] == 4 and len({tuple(r) for r in beams}) == 4


def test_eos_list_min_new_tokens_and_padding_of_done_rows(gpt2):
    ids = np.array([[5, 6, 7, 8], [9, 10, 11, 12]])
    free = gpt2.generate(input_ids=ids, max_new_tokens=8, eos_token_id=[]).numpy()
    eos = [int(free[0, 5]), int(free[1, 7])]  # the 2nd new token of row 0, the 4th of row 1
    out = gpt2.generate(input_ids=ids, max_new_tokens=8, eos_token_id=eos, pad_token_id=1).numpy()
    first_eos = [int(np.isin(row[4:], eos).argmax()) for row in out]
    for row, k in zip(out, first_eos):
        assert (row[4 + k + 1:] == 1).all()  # after its eos a row holds pad tokens
    assert out.shape[1] <= 4 + 4  # both rows ended by their 4th new token: the loop stopped early
    late = gpt2.generate(input_ids=ids, max_new_tokens=8, eos_token_id=eos, min_new_tokens=6).numpy()
    assert not np.isin(late[:, 4:10], eos).any()  # no eos among the first 6 new tokens


def test_sampling_is_reproducible_with_manual_seed_and_returns_n_sequences(gpt2):
    ids = np.array([[5, 6, 7, 8], [9, 10, 11, 12]])
    kw = dict(input_ids=ids, max_new_tokens=6, do_sample=True, top_k=20, top_p=0.9, temperature=1.3,
              num_return_sequences=3, eos_token_id=[])
    tp.manual_seed(3)
    a = gpt2.generate(**kw).numpy()
    tp.manual_seed(3)
    b = gpt2.generate(**kw).numpy()
    np.testing.assert_array_equal(a, b)
    assert a.shape == (6, 10)
    np.testing.assert_array_equal(a[:3, :4], np.repeat(ids[:1], 3, 0))  # the prompt's copies come together
    assert len({tuple(r) for r in a[:3]}) > 1


def test_beam_sampling_is_reproducible_and_differs_from_beam_search(gpt2):
    ids = np.array([[5, 6, 7, 8]])
    kw = dict(input_ids=ids, max_new_tokens=8, num_beams=3, num_return_sequences=3, eos_token_id=[])
    searched = gpt2.generate(**kw).numpy()
    runs = []
    for _ in range(2):
        tp.manual_seed(11)
        runs.append(gpt2.generate(do_sample=True, temperature=2.0, **kw).numpy())
    np.testing.assert_array_equal(runs[0], runs[1])
    assert runs[0].shape == searched.shape == (3, 12) and not np.array_equal(runs[0], searched)


@pytest.mark.parametrize("name", ["gpt2", "llama", "t5"])
def test_beam_search_same_with_and_without_cache(name):
    model = (AutoModelForSeq2SeqLM if name == "t5" else AutoModelForCausalLM).from_pretrained(MODELS / name)
    ids = np.array([[5, 6, 7, 8, 9], [1, 1, 10, 11, 12]])
    mask = np.array([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])
    kw = dict(input_ids=ids, attention_mask=mask, max_new_tokens=7, num_beams=3, num_return_sequences=2,
              repetition_penalty=1.3)
    np.testing.assert_array_equal(model.generate(use_cache=True, **kw).numpy(),
                                  model.generate(use_cache=False, **kw).numpy())


def test_right_padding_warns(gpt2, caplog):
    ids = np.array([[5, 6, 7, 8], [9, 10, 1, 1]])
    with caplog.at_level(logging.WARNING, logger="tinypeft"):
        gpt2.generate(input_ids=ids, attention_mask=(ids != 1).astype(int), max_new_tokens=2)
    assert "right-padding was detected" in caplog.text and "padding_side='left'" in caplog.text
    caplog.clear()
    left = np.array([[5, 6, 7, 8], [1, 1, 9, 10]])
    with caplog.at_level(logging.WARNING, logger="tinypeft"):
        gpt2.generate(input_ids=left, attention_mask=(left != 1).astype(int), max_new_tokens=2)
    assert "right-padding" not in caplog.text


def test_generation_config_json_gives_defaults_a_call_overrides(tmp_path):
    shutil.copytree(MODELS / "gpt2", tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "generation_config.json").read_text())
    cfg.update(max_new_tokens=3, repetition_penalty=5.0, eos_token_id=[0, 2])
    (tmp_path / "m" / "generation_config.json").write_text(json.dumps(cfg))
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    gc = model.generation_config
    assert (gc.max_new_tokens, gc.repetition_penalty, gc.eos_token_id, gc.pad_token_id) == (3, 5.0, [0, 2], 1)
    ids = np.array([[5, 6, 7, 8]])
    out = model.generate(input_ids=ids).numpy()
    assert out.shape == (1, 7)
    np.testing.assert_array_equal(out, model.generate(input_ids=ids, max_new_tokens=3, repetition_penalty=5.0).numpy())
    longer = model.generate(input_ids=ids, max_new_tokens=5, repetition_penalty=1.0).numpy()
    assert longer.shape == (1, 9) and model.generation_config.max_new_tokens == 3  # the call changed nothing
    # saved with the model, read back equal
    model.save_pretrained(tmp_path / "saved")
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "saved").generation_config == gc
    # a generation_config passed to the call replaces the model's
    assert model.generate(input_ids=ids, generation_config=GenerationConfig(max_new_tokens=1)).shape == (1, 5)


def test_generation_config_without_file_comes_from_config_json(tmp_path):
    shutil.copytree(MODELS / "opt", tmp_path / "m")
    (tmp_path / "m" / "generation_config.json").unlink()
    gc = AutoModelForCausalLM.from_pretrained(tmp_path / "m").generation_config
    assert (gc.eos_token_id, gc.pad_token_id, gc.num_beams, gc.max_length) == (0, 1, 1, None)


def test_generation_config_rejects_bad_files_and_values(tmp_path):
    (tmp_path / "generation_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        GenerationConfig.from_pretrained(tmp_path)
    (tmp_path / "generation_config.json").write_text(json.dumps({"num_beams": 0}))
    with pytest.raises(ValueError, match="num_beams"):
        GenerationConfig.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="early_stopping"):
        GenerationConfig(early_stopping="sometimes")
    with pytest.raises(ValueError, match="num_return_sequences"):
        GenerationConfig(num_beams=2, num_return_sequences=3)


# ----------------------------------------------------------------------------------------- streamers
def test_text_streamer_prints_the_new_text_as_it_comes(gpt2, tok):
    ids = tok(["the cat sat"], return_tensors="np")["input_ids"]
    buf = io.StringIO()
    with redirect_stdout(buf):
        out = gpt2.generate(input_ids=ids, max_new_tokens=10, eos_token_id=[], streamer=TextStreamer(tok, skip_prompt=True))
    assert buf.getvalue() == tok.decode(out.numpy()[0, ids.shape[1]:]) + "\n"
    buf = io.StringIO()
    with redirect_stdout(buf):
        gpt2.generate(input_ids=ids, max_new_tokens=10, eos_token_id=[], streamer=TextStreamer(tok))
    assert buf.getvalue() == tok.decode(out.numpy()[0]) + "\n"


class _Recorder(TextStreamer):
    def __init__(self, tokenizer, **kw):
        super().__init__(tokenizer, **kw)
        self.chunks = []

    def on_finalized_text(self, text, stream_end=False):
        self.chunks.append((text, stream_end))


def test_text_streamer_holds_back_an_unfinished_word(tok):
    s = _Recorder(tok, skip_prompt=True)
    s.put(np.array([[5]]))  # the prompt: skipped
    for i in tok("the cat sat")["input_ids"]:
        s.put(np.array([i]))
    s.end()
    text = "".join(c for c, _ in s.chunks)
    assert text == "the cat sat" and s.chunks[-1][1]
    # every chunk before the end stops at a word boundary
    assert all(c == "" or c.endswith(" ") or c.isalnum() or c.strip().isalnum() for c, _ in s.chunks[:-1])
    with pytest.raises(ValueError, match="batch size 1"):
        TextStreamer(tok).put(np.array([[1, 2], [3, 4]]))


def test_text_iterator_streamer_yields_text_from_another_thread(gpt2, tok):
    ids = tok(["once upon"], return_tensors="np")["input_ids"]
    streamer = TextIteratorStreamer(tok, skip_prompt=True, timeout=60)
    result = {}

    def run():
        result["ids"] = gpt2.generate(input_ids=ids, max_new_tokens=12, eos_token_id=[], streamer=streamer).numpy()

    thread = threading.Thread(target=run)
    thread.start()
    chunks = list(streamer)
    thread.join()
    assert "".join(chunks) == tok.decode(result["ids"][0, ids.shape[1]:])


def test_streamer_with_beams_is_refused(gpt2, tok):
    with pytest.raises(ValueError, match="beam"):
        gpt2.generate(input_ids=np.array([[5, 6]]), num_beams=2, streamer=TextStreamer(tok))


def test_without_a_mask_pad_tokens_are_padding_unless_pad_is_an_eos(gpt2):
    """transformers' rule: pad tokens in the prompt are masked; not when the pad id is also an eos id."""
    ids = np.array([[1, 1, 5, 6], [7, 8, 9, 10]])  # the fixture's pad is 1, its eos 0
    inferred = gpt2.generate(input_ids=ids, max_new_tokens=4).numpy()
    explicit = gpt2.generate(input_ids=ids, attention_mask=(ids != 1).astype(int), max_new_tokens=4).numpy()
    np.testing.assert_array_equal(inferred, explicit)
    ids = np.array([[0, 5, 6, 7]])  # 0: eos of the model, here also the pad
    for eos in (None, []):  # the model's eos counts even when a call turns eos off
        kw = {} if eos is None else {"eos_token_id": eos}
        np.testing.assert_array_equal(gpt2.generate(input_ids=ids, pad_token_id=0, max_new_tokens=4, **kw).numpy(),
                                      gpt2.generate(input_ids=ids, attention_mask=np.ones_like(ids), pad_token_id=0,
                                                    max_new_tokens=4, **kw).numpy())
