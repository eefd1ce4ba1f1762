"""Solutions to tutorials/03_matmul.md's exercises (and the mistakes their checks must catch).

    python tutorials/solutions/03_matmul.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tinypeft.course.checks_03 import check_micro_kernel, check_pack_a, check_tiled_matmul  # noqa: E402


# ---- Exercise 1 ----
def pack_a(a, mr):
    m, k = a.shape
    panels = -(-m // mr)
    out = np.zeros(panels * k * mr, dtype=a.dtype)
    pos = 0
    for p in range(panels):  # as csrc/gemm_kernel.h's pack_a
        rows = min(mr, m - p * mr)
        for l in range(k):
            out[pos : pos + rows] = a[p * mr : p * mr + rows, l]  # the rest of the mr stay 0
            pos += mr
    return out


# ---- Exercise 2 ----
def micro_kernel(a_packed, b_packed, kc, mr, nr):
    acc = np.zeros((mr, nr), dtype=np.result_type(a_packed, b_packed))  # the registers
    for l in range(kc):
        acc += np.outer(a_packed[l * mr : (l + 1) * mr], b_packed[l * nr : (l + 1) * nr])  # rank-1 update
    return acc


# ---- Exercise 3 ----
def tiled_matmul(a, b, tile):
    m, k = a.shape
    n = b.shape[1]
    c = np.zeros((m, n), dtype=np.result_type(a, b))
    for i in range(0, m, tile):
        for j in range(0, n, tile):
            for p in range(0, k, tile):  # slicing past the end stops at the edge
                c[i : i + tile, j : j + tile] += a[i : i + tile, p : p + tile] @ b[p : p + tile, j : j + tile]
    return c


EXERCISES = {
    "check_pack_a": (pack_a,),
    "check_micro_kernel": (micro_kernel,),
    "check_tiled_matmul": (tiled_matmul,),
}


# ---- mistakes the checks must catch ----
def _pack_a_row_major(a, mr):  # panels stored row by row: the micro-kernel would read the wrong numbers
    m, k = a.shape
    padded = np.zeros((-(-m // mr) * mr, k), a.dtype)
    padded[:m] = a
    return padded.reshape(-1)


def _micro_kernel_transposed_b(a_packed, b_packed, kc, mr, nr):  # reads B's panel as if column-major
    a = a_packed.reshape(kc, mr).T
    b = b_packed.reshape(nr, kc).T
    return a @ b


def _tiled_matmul_drops_edges(a, b, tile):  # only whole tiles: the ragged edge of C stays 0
    m, k = a.shape
    n = b.shape[1]
    c = np.zeros((m, n))
    for i in range(0, m - tile + 1, tile):
        for j in range(0, n - tile + 1, tile):
            for p in range(0, k - tile + 1, tile):
                c[i : i + tile, j : j + tile] += a[i : i + tile, p : p + tile] @ b[p : p + tile, j : j + tile]
    return c


MISTAKES = {
    "check_pack_a": (_pack_a_row_major,),
    "check_micro_kernel": (_micro_kernel_transposed_b,),
    "check_tiled_matmul": (_tiled_matmul_drops_edges,),
}


# ---- holes the checks once let through: each must now fail (tests/test_tutorials.py) ----
def _tiled_matmul_all_at_once(a, b, tile):  # right numbers, no tiles
    return a @ b


def _tiled_matmul_by_rows(a, b, tile):  # tiles the rows of C only: each product still spans all of k and n
    return np.concatenate([a[i : i + tile] @ b for i in range(0, a.shape[0], tile)])


HOLES = {"check_tiled_matmul": [(_tiled_matmul_all_at_once,), (_tiled_matmul_by_rows,)]}

if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
