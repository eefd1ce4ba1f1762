"""GFLOP/s of tinypeft's C matmul against np.matmul (OpenBLAS), measured in the same run.

    python bench/matmul.py                 # float32, 1 and 2 threads
    python bench/matmul.py --dtype float64 --threads 1 2 4 --kernel avx2

NumPy's BLAS runs with the same thread count as ours (via threadpoolctl when installed), so the
ratio compares like with like. OPENBLAS_CORETYPE in the environment pins OpenBLAS to one CPU's
kernels and can make it slower than it should be; it is printed so a surprising ratio can be read.
"""
import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np

from tinypeft import backend
from tinypeft.backend import cmatmul

SQUARE = [128, 256, 512, 1024, 2048]
# GPT-2 small, 512 tokens: the fused qkv projection and the MLP down-projection.
GPT2 = [(512, 768, 2304), (512, 3072, 768)]
# GPT-2 small at 1 x 128 tokens: qkv, attention output, MLP up and down, the LM head (b = wte.T, a transposed
# view); and decoding rows (m = 1, 4) through backend.matmul, which gives them to the few-row kernel.
MODEL = [(128, 768, 2304), (128, 768, 768), (128, 768, 3072), (128, 3072, 768), (128, 768, 50257),
         (1, 768, 2304), (1, 768, 50257), (4, 768, 2304), (4, 576, 49152)]


def best_seconds(fn, min_time=0.3, repeats=3):
    """Best time per call over `repeats` rounds of enough calls to fill `min_time`."""
    fn()  # warm-up: page faults, thread start, kernel choice
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-6)
    calls = max(1, int(min_time / one))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def blas_threads(n):
    """Context that limits NumPy's BLAS to n threads, if threadpoolctl can."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def print_environment():
    print(f"numpy {np.__version__}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            print(f"  {pool.get('internal_api')} {pool.get('version')} "
                  f"core={pool.get('architecture')} threads={pool.get('num_threads')}")
    except ImportError:
        print("  (pip install threadpoolctl to see and limit NumPy's BLAS; NumPy uses its own thread count)")
    info = cmatmul.build_info()
    print(f"tinypeft C: kernel={info['kernel']} ({info['vector_bits']}-bit) cflags='{info['cflags']}' "
          f"gcc {info['compiler']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--kernel", default=None, help="force a kernel: generic, avx2, avx512")
    args = parser.parse_args()
    if not cmatmul.available():
        raise SystemExit(f"C extension not available: {cmatmul.build_info()['error']}")
    if args.kernel:
        cmatmul.set_kernel(args.kernel)
    print_environment()

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from limits import peak_gflops

    peak = peak_gflops()
    print(f"peak of one core (bench/limits.py): {peak:.1f} GFLOP/s; load average {os.getloadavg()[0]:.2f}")
    shapes = [(n, n, n) for n in SQUARE] + GPT2 + MODEL
    rng = np.random.default_rng(0)
    print(f"\n{'m x k @ k x n':>22} {'threads':>7} {'tinypeft GFLOP/s':>17} {'of peak':>8} {'numpy GFLOP/s':>14} {'ratio':>6}")
    for m, k, n in shapes:
        a = rng.standard_normal((m, k)).astype(args.dtype)
        # the model shapes' weights as models hold them: [n, k] row-major, used transposed
        b = (rng.standard_normal((n, k)).astype(args.dtype).T if (m, k, n) in MODEL
             else rng.standard_normal((k, n)).astype(args.dtype))
        out = np.empty((m, n), dtype=args.dtype)
        flops = 2.0 * m * n * k
        for t in args.threads:
            cmatmul.set_num_threads(t)
            if m <= cmatmul.GEMV_MAX_ROWS:
                ours = best_seconds(lambda: backend.matmul(a, b))
            else:
                ours = best_seconds(lambda: cmatmul.matmul(a, b, out=out))
            with blas_threads(t):
                theirs = best_seconds(lambda: np.matmul(a, b, out=out))
            shape = f"{m}x{k} @ {k}x{n}"
            print(f"{shape:>22} {t:>7} {flops / ours / 1e9:>17.1f} {flops / ours / 1e9 / (peak * t):>8.2f} "
                  f"{flops / theirs / 1e9:>14.1f} {theirs / ours:>6.2f}")
    print("\nratio = numpy time / tinypeft time (1.0 = as fast as BLAS; below 1 = slower); of peak = GFLOP/s over "
          "threads x one core's peak (a few-row product is bound by memory, not FLOPs: see bench/limits.py)")


if __name__ == "__main__":
    main()
