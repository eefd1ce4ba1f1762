"""tinypeft.gguf.quants against llama.cpp's own NumPy dequantization (gguf.quants.dequantize): bit-exact.

Legacy formats are quantized from random weights by gguf.quants.quantize; K-quants (which the gguf package
cannot quantize) are random blocks whose float16 scales are set to ordinary values, so every scale, min
and bit pattern is exercised.
"""
import numpy as np
import pytest

gguf = pytest.importorskip("gguf")  # the optional extra tinypeft[gguf]; CI installs it with the test extra
from gguf import GGMLQuantizationType as Q  # noqa: E402
from gguf.quants import dequantize as reference  # noqa: E402

from tinypeft.gguf.quants import GGML_TYPES, SUPPORTED, dequantize  # noqa: E402

LEGACY = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]
K_QUANTS = {"Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}  # byte offsets of the float16 scales


def bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


@pytest.mark.parametrize("name", LEGACY)
def test_legacy_formats_bit_exact(name):
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((64, 256)) * rng.uniform(0.01, 3, (64, 1))).astype(np.float32)
    w[0, :32] = 0.0  # a block of zeros: scale 0
    raw = gguf.quants.quantize(w, Q[name])
    got, ref = dequantize(raw, Q[name], w.shape), reference(raw, Q[name])
    assert got.shape == ref.shape == w.shape
    assert np.array_equal(bits(got), bits(ref))
    step = {"Q4_0": 8, "Q4_1": 15, "Q5_0": 16, "Q5_1": 31, "Q8_0": 127}[name]
    assert np.abs(got - w).max() <= np.abs(w).max() / step  # and close to the weights it stores


@pytest.mark.parametrize("name", sorted(K_QUANTS))
def test_k_quants_bit_exact(name):
    rng = np.random.default_rng(1)
    _, block, size = GGML_TYPES[int(Q[name])]
    raw = rng.integers(0, 256, (48, 3 * size), dtype=np.uint8)  # 48 rows of 3 super-blocks
    blocks = raw.reshape(-1, size)
    for off in K_QUANTS[name]:
        blocks[:, off:off + 2] = rng.uniform(1e-4, 0.1, (blocks.shape[0], 1)).astype(np.float16).view(np.uint8)
    got, ref = dequantize(raw, Q[name], (48, 3 * block)), reference(raw, Q[name])
    assert got.shape == ref.shape == (48, 3 * block)
    assert np.array_equal(bits(got), bits(ref))


@pytest.mark.parametrize("name", ["F32", "F16", "BF16"])
def test_float_formats_bit_exact(name):
    rng = np.random.default_rng(2)
    w = rng.standard_normal((8, 40)).astype(np.float32)
    raw = gguf.quants.quantize(w, Q[name]) if name == "BF16" else w.astype({"F32": np.float32, "F16": np.float16}[name])
    got = dequantize(raw, Q[name], w.shape)
    ref = reference(raw.view(np.uint8) if name == "BF16" else raw, Q[name])
    assert np.array_equal(bits(got), bits(ref.reshape(w.shape)))


def test_every_supported_type_is_tested():
    assert sorted(LEGACY + list(K_QUANTS) + ["F32", "F16", "BF16"]) == SUPPORTED


def test_unknown_type_names_it_and_lists_the_supported():
    with pytest.raises(NotImplementedError, match=r"IQ2_XXS.*Q4_K"):
        dequantize(np.zeros(66, np.uint8), Q.IQ2_XXS)


def test_data_that_is_not_whole_blocks():
    with pytest.raises(ValueError, match="whole number of 20-byte blocks"):
        dequantize(np.zeros(30, np.uint8), Q.Q4_1)
    with pytest.raises(ValueError, match="shape"):
        dequantize(np.zeros(40, np.uint8), Q.Q4_1, (3, 32))


def test_q4_1_block_by_hand():
    """One Q4_1 block: d = 0.5, m = -1, nibbles 0..15 then 15..0: w_j = 0.5 * q_j - 1."""
    q = np.array(list(range(16)) + list(range(15, -1, -1)), dtype=np.uint8)
    packed = q[:16] | (q[16:] << 4)  # weight j in the low nibble of byte j, weight j + 16 in the high one
    block = np.concatenate([np.float16(0.5).reshape(1).view(np.uint8), np.float16(-1).reshape(1).view(np.uint8), packed])
    np.testing.assert_array_equal(dequantize(block, Q.Q4_1), 0.5 * q.astype(np.float32) - 1)
