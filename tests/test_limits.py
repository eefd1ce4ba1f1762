"""bench/limits.py's instruments (csrc/peak.c): the STREAM-like copy and triad write the right values on
1 and 2 threads, the FMA loop reports the flops it did, and the floors come out positive and ordered."""
import sys
from pathlib import Path

import numpy as np
import pytest

from tinypeft.backend import cmatmul

pytestmark = pytest.mark.skipif(not cmatmul.available(), reason="C extension not built")


@pytest.mark.parametrize("threads", [1, 2])
def test_copy_and_triad_compute_what_they_time(threads):
    ffi, lib = cmatmul.ffi, cmatmul.lib
    n = (1 << 19) + 37  # a few chunks and a ragged end
    rng = np.random.default_rng(0)
    a, b, c = np.zeros(n, np.float32), rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    ptr = [ffi.cast("float *", x.ctypes.data) for x in (a, b, c)]
    assert lib.tp_stream_f32(0, *ptr, n, 3.0, threads) == 8 * n
    np.testing.assert_array_equal(a, b)
    assert lib.tp_stream_f32(1, *ptr, n, 3.0, threads) == 12 * n
    np.testing.assert_allclose(a, b + np.float32(3.0) * c, rtol=1e-6, atol=1e-6)


def test_fma_loop_counts_its_flops_and_floors_are_sane():
    lanes = cmatmul.build_info()["vector_bits"] // 32
    assert cmatmul.lib.tp_fma_peak(10) == 2 * 12 * max(lanes, 4) * 10
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import limits

    m = {"peak_gflops_core": 50.0, "threads": 2, "triad_gbs": 10.0}
    f = limits.floors(m)
    assert all(v > 0 for v in f.values())
    assert f["gpt2_lora_step_4x128"] > f["gpt2_forward_1x128"] > f["minilm_32"]
    # GPT-2's forward at 1 x 128: about 2 x 124M x 128 flops (the weights, the LM head) plus attention
    assert 2 * 85e6 * 128 / 100e9 < f["gpt2_forward_1x128"] < 2 * 124.5e6 * 128 * 1.1 / 100e9
