"""The machine's limits, measured, and the best time each benchmarked workload could take on them.

    python bench/limits.py                 # peak, bandwidth, and the workloads' floors, on 2 threads
    python bench/limits.py --threads 1

  peak       GFLOP/s of one core: a tight loop of independent vector FMAs (csrc/peak.c) on the widest
             instruction set the C kernels use, the best of many short runs (a busy machine only lowers it)
  bandwidth  GB/s of a STREAM-like copy (a = b) and triad (a = b + s c) over 64 MiB arrays, best of runs,
             on 1 thread and on --threads
  floors     compute-bound work (a forward, a training step): FLOPs / (peak x threads);
             decoding: the weight bytes each token reads / the best triad bandwidth measured

bench/models.py and bench/train.py import `measure` and `WORKLOADS` to print each result as a fraction
of its floor. FLOPs count 2 per multiply-add, of the products only (norms, softmax and the like are
O(size), not O(size x width)); bytes count the float32 weights once per token.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's tinypeft

from tinypeft.backend import cmatmul  # noqa: E402


def peak_gflops(seconds=0.002, runs=300):
    """Best GFLOP/s of one core's FMA loop over `runs` runs of about `seconds` each. Short runs: on a shared
    machine one of them is likely to run without being preempted, and the best is the core's rate."""
    lib = cmatmul.lib
    iters = 100_000
    t = time.perf_counter()
    lib.tp_fma_peak(iters)
    per_iter = max((time.perf_counter() - t) / iters, 1e-10)
    iters = int(seconds / per_iter)
    best = 0.0
    for _ in range(runs):
        t = time.perf_counter()
        flops = lib.tp_fma_peak(iters)
        best = max(best, flops / (time.perf_counter() - t) / 1e9)
    return best


def bandwidth_gbs(threads, n=1 << 24, runs=30):
    """Best GB/s of copy and triad over float32 arrays of n elements (3 x 64 MiB, twice the L3 of this machine), the best
    of many short runs for the same reason as peak_gflops."""
    ffi, lib = cmatmul.ffi, cmatmul.lib
    a, b, c = np.empty(n, np.float32), np.ones(n, np.float32), np.full(n, 2.0, np.float32)
    pa, pb, pc = (ffi.cast("float *", x.ctypes.data) for x in (a, b, c))
    out = {}
    for op, name in ((0, "copy"), (1, "triad")):
        lib.tp_stream_f32(op, pa, pb, pc, n, 3.0, threads)  # page the arrays in
        best = 0.0
        for _ in range(runs):
            t = time.perf_counter()
            moved = lib.tp_stream_f32(op, pa, pb, pc, n, 3.0, threads)
            best = max(best, moved / (time.perf_counter() - t) / 1e9)
        out[name] = best
    return out


def measure(threads):
    """{"peak_gflops_core", "copy_gbs_1", "triad_gbs_1", "copy_gbs", "triad_gbs", "threads", "load"}."""
    if not cmatmul.available():
        raise SystemExit(f"bench/limits.py needs the C extension: {cmatmul.build_info().get('error')}")
    one = bandwidth_gbs(1)
    many = bandwidth_gbs(threads) if threads > 1 else one
    return {"peak_gflops_core": peak_gflops(), "copy_gbs_1": one["copy"], "triad_gbs_1": one["triad"],
            "copy_gbs": many["copy"], "triad_gbs": many["triad"], "threads": threads,
            "kernel": cmatmul.get_kernel(), "load": os.getloadavg()[0]}


# ---- the workloads: their work, counted from the model configs ------------------------------------------

def transformer_flops(layers, d, ffn, vocab, tokens, context, gated=False, kv_dim=None, head=True):
    """Forward FLOPs of a decoder/encoder stack over `tokens` tokens attending to `context` keys each:
    q, k, v, o projections, the MLP (three matrices if gated), QK^T and PV, and the LM head if `head`."""
    kv_dim = d if kv_dim is None else kv_dim
    per_token = 2 * (d * d * 2 + d * kv_dim * 2) + 2 * d * ffn * (3 if gated else 2) + 2 * 2 * context * d
    total = layers * per_token * tokens
    return total + (2 * d * vocab * tokens if head else 0)


GPT2 = dict(layers=12, d=768, ffn=3072, vocab=50257)
GPT2_PARAMS = 124_439_808  # with the tied LM head counted once
MINILM = dict(layers=6, d=384, ffn=1536, vocab=30522)
SMOLLM2 = dict(layers=30, d=576, ffn=1536, vocab=49152, gated=True, kv_dim=192)
SMOLLM2_PARAMS = 134_515_008


def floors(m):
    """Best possible time of each workload on the measured machine, in seconds (decoding: per token)."""
    flops_s = m["peak_gflops_core"] * 1e9 * m["threads"]
    bytes_s = max(m["triad_gbs"], m.get("triad_gbs_1", 0)) * 1e9  # the best measured: a busy machine only lowers it
    fwd = transformer_flops(**GPT2, tokens=128, context=64)  # causal: each token sees half the keys on average
    # a LoRA step on 4 x 128 with frozen weights: the forward, then the backward's input gradients (the same
    # products again); the r = 8 adapters and attention's extra backward products are small beside them
    step = 2 * transformer_flops(**GPT2, tokens=512, context=64)
    minilm = transformer_flops(**MINILM, tokens=32 * 22, context=22, head=False)
    return {
        "gpt2_forward_1x128": fwd / flops_s,
        "gpt2_lora_step_4x128": step / flops_s,
        "minilm_32": minilm / flops_s,
        "gpt2_decode_token": 4 * GPT2_PARAMS / bytes_s,
        "smollm2_decode_token": 4 * SMOLLM2_PARAMS / bytes_s,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    m = measure(args.threads)
    print(f"load average {m['load']:.2f}; kernel {m['kernel']}")
    print(f"peak, one core:        {m['peak_gflops_core']:7.1f} GFLOP/s (x {args.threads} threads = "
          f"{m['peak_gflops_core'] * args.threads:.1f})")
    print(f"bandwidth, 1 thread:   copy {m['copy_gbs_1']:6.1f} GB/s, triad {m['triad_gbs_1']:6.1f} GB/s")
    print(f"bandwidth, {args.threads} threads:  copy {m['copy_gbs']:6.1f} GB/s, triad {m['triad_gbs']:6.1f} GB/s")
    print("floors (best possible times on these figures):")
    for name, sec in floors(m).items():
        extra = f"  = {1 / sec:7.1f} tok/s" if name.endswith("token") else ""
        print(f"  {name:24s} {sec * 1e3:9.2f} ms{extra}")


if __name__ == "__main__":
    main()
