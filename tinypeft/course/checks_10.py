"""Checks for tutorials/10_generation_and_kv_cache.md's exercises (see checking.py for how checks behave)."""
import numpy as np

from .checking import _array, _exercise
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


@_exercise
def check_positions_from_mask(positions_from_mask):
    """positions_from_mask(mask) gives each row's real tokens the positions 0, 1, 2, ...; pads are not checked."""
    masks = [
        np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]]),
        np.array([[1, 1], [0, 1]]),
        np.array([[0, 1, 1, 1, 1, 1, 1]]),
    ]
    for mask in masks:
        got = positions_from_mask(mask.copy())
        assert got is not None, "positions_from_mask returned None; return the [B, T] positions"
        got = _array(got, "positions_from_mask")
        assert got.shape == mask.shape, f"shape {got.shape}, expected {mask.shape}"
        for row, (m, g) in enumerate(zip(mask, got)):
            want = np.arange(int(m.sum()))  # real tokens of a left-padded row: 0 .. n-1
            assert np.array_equal(g[m == 1], want), (
                f"mask row {m.tolist()}: real tokens get positions {g[m == 1].tolist()}, expected {want.tolist()} "
                "(count real tokens, not columns)"
            )


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


@_exercise
def check_greedy_with_cache(greedy_with_cache):
    """greedy_with_cache(model, ids, n_new) gives generate()'s tokens, feeding the prompt once and then 1 token a step."""
    import tinypeft as tp

    model = tp.AutoModelForCausalLM.from_pretrained(course_file(FIXTURE_GPT2))
    for prompt, n_new in [(np.array([[5, 6, 7, 8, 9]]), 10), (np.array([[300, 12]]), 6)]:
        counting = _CountingModel(model)
        got = greedy_with_cache(counting, prompt.copy(), n_new)
        assert got is not None, "greedy_with_cache returned None; return the ids"
        got = np.asarray(getattr(got, "data", got))
        want = model.generate(prompt, max_new_tokens=n_new, eos_token_id=-1).numpy()
        assert got.shape == want.shape, f"prompt {prompt.tolist()}: shape {got.shape}, expected {want.shape}"
        assert np.array_equal(got, want), f"prompt {prompt.tolist()}: {got.tolist()} but generate() gives {want.tolist()}"
        T = prompt.shape[1]
        assert counting.fed == T + n_new - 1, (
            f"your calls fed the model {counting.fed} tokens in {counting.calls} calls; with the cache it takes "
            f"{T + n_new - 1}: the {T}-token prompt once, then only the newest token for each of the other {n_new - 1} steps"
        )
