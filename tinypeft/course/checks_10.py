"""Checks for tutorials/10_generation_and_kv_cache.md's exercises (see checking.py for how checks behave)."""
import numpy as np

from .checking import _array, _exercise, _predicted
from .files import path as course_file

FIXTURE_GPT2 = "tests/fixtures/models/gpt2"


@_exercise
def check_top_k_filter(top_k_filter):
    """top_k_filter(logits, k) keeps each row's k largest; sampling from it matches TopKLogitsWarper(k)'s."""
    from tinypeft.models.generation import sample_next_tokens
    from tinypeft.models.logits_process import TopKLogitsWarper

    rng = np.random.default_rng(10)
    B, V = 400, 12
    logits = rng.standard_normal((B, V)) * 2  # distinct values: no ties
    for k in (1, 3, V - 1):
        got = top_k_filter(logits.copy(), k)
        assert got is not None, "top_k_filter returned None; return the filtered logits"
        got = _array(got, f"top_k_filter(k={k})", np.float64)
        assert got.shape == logits.shape, f"k={k}: shape {got.shape}, expected {logits.shape}"
        top = np.argsort(-logits, axis=1)[:, :k]  # the k largest of each row
        keep = np.zeros_like(logits, dtype=bool)
        np.put_along_axis(keep, top, True, axis=1)
        kept = np.isfinite(got)
        assert (kept.sum(1) == k).all(), f"k={k}: rows keep {sorted(set(kept.sum(1)))} tokens, expected {k}"
        assert (kept == keep).all(), f"k={k}: the kept tokens are not each row's {k} largest logits"
        assert np.array_equal(got[keep], logits[keep]), f"k={k}: the kept logits must keep their values"
        assert (got[~keep] == -np.inf).all(), f"k={k}: dropped logits must be -inf"
        # sample from both filtered logits with the same random numbers (inverse CDF, one u per row)
        ours = sample_next_tokens(got, np.random.default_rng(k))
        theirs = sample_next_tokens(TopKLogitsWarper(k)(None, logits), np.random.default_rng(k))
        assert np.array_equal(ours, theirs), f"k={k}: sampled tokens differ from TopKLogitsWarper's in {(ours != theirs).sum()} rows"


def _greedy_tokens_fed(model, prompt, n_new, use_cache):
    """Greedy decoding as section 1 (whole sequence each step) or with the cache; the positions fed in all."""
    import tinypeft as tp

    counting, ids, past, feed = _CountingModel(model), prompt, None, prompt
    with tp.no_grad():
        for _ in range(n_new):
            if use_cache:
                out = counting(input_ids=feed, past_key_values=past, use_cache=True)
                past = out.past_key_values
            else:
                out = counting(input_ids=ids)
            token = out.logits.numpy()[:, -1].argmax(-1)[:, None]
            ids, feed = np.concatenate([ids, token], axis=1), token
    return counting.fed


@_exercise
def check_predict_tokens_fed(prediction):
    """prediction {"without cache": n, "with cache": n}: positions fed to make 12 tokens from 5, counted on both loops."""
    import tinypeft as tp

    guess = _predicted(prediction)
    assert isinstance(guess, dict) and set(guess) == {"without cache", "with cache"}, (
        'predict a dict {"without cache": n, "with cache": n}')
    model = tp.AutoModelForCausalLM.from_pretrained(course_file(FIXTURE_GPT2))
    prompt = np.array([[5, 6, 7, 8, 9]])
    counted = {"without cache": _greedy_tokens_fed(model, prompt, 12, use_cache=False),
               "with cache": _greedy_tokens_fed(model, prompt, 12, use_cache=True)}
    print(f"the run: the two loops fed the model {counted} token positions")
    assert {k: int(v) for k, v in guess.items()} == counted, (
        f"you predicted {guess}; the loops fed {counted}. Which positions does each step run through the model, "
        "and is the last new token ever fed?")


class _CountingModel:
    """Forwards every call to the model and counts the tokens fed to it."""

    def __init__(self, model):
        self._model, self.fed, self.calls = model, 0, 0

    def __call__(self, *args, **kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.calls += 1
        self.fed += int(np.asarray(getattr(ids, "data", ids)).shape[-1])
        return self._model(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._model, name)


def sample_token(logits, temperature, rng):
    """The sampling rule of exercise 3: softmax(logits / T) in float64, then the inverse CDF at u = rng.random()."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    return min(int(np.searchsorted(np.cumsum(p), rng.random(), side="right")), len(p) - 1)


def _sample_without_cache(model, ids, n_new, temperature, seed):
    import tinypeft as tp

    rng = np.random.default_rng(seed)
    with tp.no_grad():
        for _ in range(n_new):
            logits = model(input_ids=ids).logits.numpy()[0, -1]  # the whole sequence, every step
            ids = np.concatenate([ids, [[sample_token(logits, temperature, rng)]]], axis=1)
    return ids


@_exercise
def check_sample_with_cache(sample_with_cache):
    """sample_with_cache(model, ids, n_new, temperature, rng): the tokens of the same sampler run without a cache,
    feeding the prompt once and then 1 token a step."""
    import tinypeft as tp

    model = tp.AutoModelForCausalLM.from_pretrained(course_file(FIXTURE_GPT2))
    for prompt, n_new, temperature, seed in [(np.array([[5, 6, 7, 8, 9]]), 10, 0.7, 0), (np.array([[300, 12]]), 8, 1.5, 1)]:
        counting = _CountingModel(model)
        got = sample_with_cache(counting, prompt.copy(), n_new, temperature, np.random.default_rng(seed))
        assert got is not None, "sample_with_cache returned None; return the ids"
        got = np.asarray(getattr(got, "data", got))
        want = _sample_without_cache(model, prompt, n_new, temperature, seed)
        what = f"prompt {prompt.tolist()}, temperature {temperature}, seed {seed}"
        assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
        assert np.array_equal(got, want), (f"{what}: {got.tolist()}, but the same sampler without the cache gives "
                                           f"{want.tolist()} (one rng.random() per token, after dividing by T)")
        T = prompt.shape[1]
        assert counting.fed == T + n_new - 1, (
            f"your calls fed the model {counting.fed} tokens in {counting.calls} calls; with the cache it takes "
            f"{T + n_new - 1}: the {T}-token prompt once, then only the newest token for each of the other {n_new - 1} steps"
        )
