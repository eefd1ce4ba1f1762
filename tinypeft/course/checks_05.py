"""Checks for tutorials/05_pretrained_minilm.md's exercises (see checking.py for how checks behave)."""
import numpy as np

from .checking import _array, _close, _exercise, _predicted
from .files import path as course_file

MINILM_REFERENCE = "tests/fixtures/reference/minilm_embeddings.npz"


@_exercise
def check_predict_bf16_first_integer(prediction):
    """prediction: the smallest positive integer bfloat16 cannot hold exactly; found by rounding 1, 2, 3, ..."""
    from tinypeft.checkpoint_io import bf16_bits_to_float32, float32_to_bf16_bits

    _predicted(prediction)
    n = np.arange(1, 1 << 20, dtype=np.float32)
    back = bf16_bits_to_float32(float32_to_bf16_bits(n))
    first = int(n[np.flatnonzero(back != n)[0]])
    print(f"the run: {first - 1} survives the round trip to bfloat16, {first} comes back as {int(back[first - 1])}")
    assert int(_predicted(prediction)) == first, (
        f"you predicted {prediction}; the first integer bfloat16 rounds is {first}. How many bits of significand "
        "does bfloat16 have, counting the implicit leading 1?")


@_exercise
def check_predict_bf16_relative_error(prediction):
    """prediction: the largest relative error of rounding a float32 to bfloat16 (nearest even), as a number."""
    from tinypeft.checkpoint_io import bf16_bits_to_float32, float32_to_bf16_bits

    guess = float(_predicted(prediction))
    rng = np.random.default_rng(5)
    x = (rng.uniform(1, 2, 1_000_000) * 2.0 ** rng.integers(-60, 60, 1_000_000)).astype(np.float32)
    back = bf16_bits_to_float32(float32_to_bf16_bits(x)).astype(np.float64)
    worst = float(np.max(np.abs(back - x) / x))
    print(f"the run: the largest relative error over a million float32 values is {worst:.6f} (2^{np.log2(worst):.3f})")
    assert guess > 0 and abs(np.log2(guess) - np.log2(worst)) < 0.5, (
        f"you predicted {guess:g}; the measured worst case is {worst:.6f}. Rounding to nearest moves a value by at "
        "most half a step; how large is one step relative to the value, with bfloat16's significand?")


@_exercise
def check_sentence_embedding(sentence_embedding):
    """Mean pooling + L2 normalisation of MiniLM's token states gives transformers' sentence embeddings."""
    import tinypeft as tp
    from tinypeft.hub import fetch_minilm

    ref = np.load(course_file(MINILM_REFERENCE))
    path = fetch_minilm()
    model = tp.AutoModel.from_pretrained(path)
    batch = {k: ref[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    assert (batch["attention_mask"] == 0).any(), "the reference batch should contain padding"
    with tp.no_grad():
        hidden = model(**batch).last_hidden_state.numpy()  # [8, 12, 384]
    got = sentence_embedding(hidden.copy(), batch["attention_mask"].copy())
    assert got is not None, "sentence_embedding returned None; return the [B, D] array"
    got = _array(got, "sentence_embedding", np.float64)
    assert got.shape == ref["embeddings"].shape, f"shape {got.shape}, expected {ref['embeddings'].shape}"
    _close(np.linalg.norm(got, axis=1), np.ones(len(got)), "the length of each sentence vector", atol=1e-5)
    _close(got, ref["embeddings"], "embeddings vs transformers' (are padding tokens left out of the mean?)",
           rtol=0, atol=2e-5)
