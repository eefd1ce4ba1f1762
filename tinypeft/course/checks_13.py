"""Checks for tutorials/13_four_bits.md's exercises (see checking.py for how checks behave)."""
import numpy as np

from .checking import _array, _exercise


@_exercise
def check_fp4_table(fp4_table):
    """fp4_table() equals bitsandbytes' FP4 code, index by index."""
    from tinypeft.quantization import get_4bit_type

    got = fp4_table()
    assert got is not None, "fp4_table returned None; return the 16 values"
    got = _array(got, "fp4_table", np.float64)
    assert got.shape == (16,), f"shape {got.shape}, expected (16,)"
    want = get_4bit_type("fp4").astype(np.float64)
    bad = np.flatnonzero(~np.isclose(got, want, atol=1e-7))
    assert bad.size == 0, (f"index {bad[0]} (bits {bad[0]:04b}): got {got[bad[0]]:.6g}, expected {want[bad[0]]:.6g}")


@_exercise
def check_dequantize_block(dequantize_block):
    """dequantize_block(packed, absmax, code, n) equals tinypeft's dequantize_4bit on one block."""
    from tinypeft.quantization import dequantize_4bit, get_4bit_type, quantize_4bit

    rng = np.random.default_rng(13)
    for n, qt in ((64, "nf4"), (7, "fp4"), (1, "nf4")):
        block = (rng.standard_normal(n) * 0.02).astype(np.float32)
        packed, state = quantize_4bit(block, blocksize=64, quant_type=qt)
        got = dequantize_block(packed.reshape(-1).copy(), state.absmax[0], get_4bit_type(qt), n)
        assert got is not None, "dequantize_block returned None; return the n values"
        got = _array(got, f"dequantize_block(n={n})")
        want = dequantize_4bit(packed, state)
        assert got.shape == want.shape, f"n={n}: shape {got.shape}, expected {want.shape}"
        i = np.flatnonzero(~np.isclose(got, want, rtol=1e-6, atol=0))
        assert i.size == 0, (f"n={n}, {qt}: value {i[0]} is {got[i[0]]:.6g}, expected {want[i[0]]:.6g} "
                             "(is the first index in the high nibble?)")
