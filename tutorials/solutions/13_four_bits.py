"""Solutions to tutorials/13_four_bits.md's exercises (and the mistakes their checks must catch).

    python tutorials/solutions/13_four_bits.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tinypeft.course.checks_13 import check_dequantize_block, check_fp4_table  # noqa: E402


# ---- Exercise 1 ----
def fp4_table():
    values = []
    for i in range(16):
        sign = -1.0 if i & 8 else 1.0
        e, m = (i >> 1) & 3, i & 1
        magnitude = 2.0 ** (4 - e) * (1 + m / 2) if e > 0 else 0.0625 * m
        values.append(sign * magnitude / 12)
    return np.array(values, dtype=np.float32)


# ---- Exercise 2 ----
def dequantize_block(packed, absmax, code, n):
    idx = np.empty(2 * packed.size, dtype=np.uint8)
    idx[0::2], idx[1::2] = packed >> 4, packed & 0x0F  # first value in the high nibble
    return code[idx[:n]] * np.float32(absmax)


EXERCISES = {
    "check_fp4_table": (fp4_table,),
    "check_dequantize_block": (dequantize_block,),
}


# ---- mistakes the checks must catch ----
def _fp4_exponent_counting_up():  # 2 ** (e - 1): the usual float order, not bitsandbytes'
    values = []
    for i in range(16):
        sign = -1.0 if i & 8 else 1.0
        e, m = (i >> 1) & 3, i & 1
        magnitude = 2.0 ** (e - 1) * (1 + m / 2) if e > 0 else 0.0625 * m
        values.append(sign * magnitude / 12)
    return np.array(values, dtype=np.float32)


def _low_nibble_first(packed, absmax, code, n):
    idx = np.empty(2 * packed.size, dtype=np.uint8)
    idx[0::2], idx[1::2] = packed & 0x0F, packed >> 4
    return code[idx[:n]] * np.float32(absmax)


MISTAKES = {
    "check_fp4_table": (_fp4_exponent_counting_up,),
    "check_dequantize_block": (_low_nibble_first,),
}

if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
