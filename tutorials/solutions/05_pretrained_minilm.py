"""Solutions to tutorials/05_pretrained_minilm.md's exercises (and the mistakes their checks must catch).

    python tutorials/solutions/05_pretrained_minilm.py
"""
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tinypeft.course.checks_05 import (  # noqa: E402
    check_bf16_to_float32,
    check_read_safetensors_header,
    check_sentence_embedding,
)


# ---- Exercise 1 ----
def read_safetensors_header(filename):
    with open(filename, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))  # little-endian uint64: the header's length
        header = json.loads(f.read(n))
    return header, 8 + n  # data starts after the 8 length bytes and the header


# ---- Exercise 2 ----
def bf16_to_float32(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)  # the top half of a float32


# ---- Exercise 3 ----
def sentence_embedding(last_hidden_state, attention_mask):
    m = attention_mask[:, :, None].astype(last_hidden_state.dtype)  # [B, T, 1]
    mean = (last_hidden_state * m).sum(1) / np.maximum(m.sum(1), 1e-9)  # [B, D]: pads count 0
    return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)


EXERCISES = {
    "check_read_safetensors_header": (read_safetensors_header,),
    "check_bf16_to_float32": (bf16_to_float32,),
    "check_sentence_embedding": (sentence_embedding,),
}


# ---- mistakes the checks must catch ----
def _data_start_without_length_bytes(filename):
    header, start = read_safetensors_header(filename)
    return header, start - 8


def _bf16_read_as_float16(bits):  # both are 16 bits wide, but float16 has a 5-bit exponent
    return np.asarray(bits, dtype=np.uint16).view(np.float16).astype(np.float32)


def _mean_over_padding_too(last_hidden_state, attention_mask):
    mean = last_hidden_state.mean(1)
    return mean / np.linalg.norm(mean, axis=1, keepdims=True)


MISTAKES = {
    "check_read_safetensors_header": (_data_start_without_length_bytes,),
    "check_bf16_to_float32": (_bf16_read_as_float16,),
    "check_sentence_embedding": (_mean_over_padding_too,),
}

if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
