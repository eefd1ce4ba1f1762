"""Checks for tutorials/12_real_llm.md's exercises (see checking.py for how checks behave)."""
import numpy as np

from .checking import _array, _exercise


@_exercise
def check_dequantize_q4_0_block(dequantize_q4_0_block):
    """dequantize_q4_0_block(18 bytes) gives the block's 32 weights, bit-exact with tinypeft's Q4_0."""
    from tinypeft.gguf.quants import dequantize_q4_0

    rng = np.random.default_rng(12)
    for trial in range(50):
        block = rng.integers(0, 256, 18, dtype=np.uint8)
        block[:2] = np.float16(rng.uniform(-0.2, 0.2)).reshape(1).view(np.uint8)
        got = dequantize_q4_0_block(bytes(block) if trial % 2 else block.copy())
        assert got is not None, "dequantize_q4_0_block returned None; return the 32 weights"
        got = _array(got, "dequantize_q4_0_block", np.float32).reshape(-1)
        want = dequantize_q4_0(block.reshape(1, 18)).reshape(-1)
        assert got.shape == (32,), f"got {got.shape} weights, expected 32"
        assert np.array_equal(got, want), (
            f"block {block.tolist()}: first weights {got[:4].tolist()}, expected {want[:4].tolist()} "
            "(low nibbles are weights 0-15, high nibbles 16-31, and q - 8 before scaling)")


@_exercise
def check_unpermute_qk(unpermute):
    """unpermute(w, n_head) undoes llama.cpp's per-head row order [0, hd/2, 1, hd/2 + 1, ...]."""
    from tinypeft.gguf import unpermute_qk_rows

    rng = np.random.default_rng(3)
    for n_head, hd, width in ((1, 4, 1), (2, 8, 3), (3, 16, 5)):
        w = rng.standard_normal((n_head * hd, width)).astype(np.float32)
        got = unpermute(w.copy(), n_head)
        assert got is not None, "unpermute returned None; return the reordered matrix"
        got = _array(got, f"unpermute(n_head={n_head})")
        assert got.shape == w.shape, f"shape {got.shape}, expected {w.shape}"
        assert np.array_equal(got, unpermute_qk_rows(w, n_head)), (
            f"n_head={n_head}, hd={hd}: rows come out in the wrong order (row 1 of the file is row hd/2 of a head)")


@_exercise
def check_render_smollm2(render):
    """render(messages, add_generation_prompt) equals SmolLM2's chat template, rendered by apply_chat_template."""
    from tinypeft.chat_template import render_chat_template
    from tinypeft.gguf import open_gguf
    from tinypeft.hub import SMOLLM2_GGUF, fetch_smollm2

    template = open_gguf(fetch_smollm2() / SMOLLM2_GGUF).metadata["tokenizer.chat_template"]
    chats = [
        [{"role": "user", "content": "Hi!"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why is the sky blue?"}],
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}],
    ]
    for chat in chats:
        for gen in (False, True):
            got = render([dict(m) for m in chat], gen)
            want = render_chat_template(template, chat, add_generation_prompt=gen)
            assert got == want, f"messages {chat}, add_generation_prompt={gen}:\n got  {got!r}\n want {want!r}"
