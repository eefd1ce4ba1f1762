"""Solutions to tutorials/09_sharing_adapters.md's exercises (and the mistakes their checks must catch).

    python tutorials/solutions/09_sharing_adapters.py
"""
import json
import os
import re
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tinypeft.course.checks_09 import (  # noqa: E402,F401
    check_cat_adapter,
    check_peft_key,
    check_read_safetensors,
)

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
          "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


# ---- Exercise 1 ----
def read_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])  # header length, u64 little-endian
    header = json.loads(raw[8:8 + n])
    metadata = header.pop("__metadata__", None)
    data = raw[8 + n:]  # offsets count from here
    tensors = {}
    for key, info in header.items():
        begin, end = info["data_offsets"]
        dtype = np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")
        tensors[key] = np.frombuffer(data[begin:end], dtype=dtype).reshape(info["shape"]).astype(dtype.newbyteorder("="))
    return metadata, tensors


# ---- Exercise 2 ----
def peft_key(key, adapter_name):
    name = re.escape(adapter_name)
    # a tuner layer's own parameter: <path>.lora_A.<name>.weight, <path>.ia3_l.<name>, <path>.lora_magnitude_vector.<name>
    m = re.fullmatch(rf"(.*\.(?:lora_A|lora_B|lora_embedding_A|lora_embedding_B|lora_magnitude_vector|ia3_l))\.{name}(\..+)?",
                     key)
    if m:
        if m.group(1).endswith("lora_magnitude_vector"):
            return m.group(1)  # in memory a small module (.weight); on disk PEFT writes the bare vector
        return m.group(1) + (m.group(2) or "")
    # a trained copy of a whole module (modules_to_save): saved under the module's original path
    m = re.fullmatch(rf"(.*)\.modules_to_save\.{name}\.(.+)", key)
    if m:
        return f"{m.group(1)}.{m.group(2)}"
    return None  # a base weight, the original_module of a modules_to_save, or another adapter's


# ---- Exercise 3 ----
def cat_adapters(As, Bs, scalings, weights):
    A = np.concatenate([w * s * a for a, s, w in zip(As, scalings, weights)], axis=0)  # [sum r_i, in]
    B = np.concatenate(Bs, axis=1)  # [out, sum r_i]
    return A, B


EXERCISES = {
    "check_read_safetensors": (read_safetensors,),
    "check_peft_key": (peft_key,),
    "check_cat_adapter": (cat_adapters,),
}


# ---- mistakes the checks must catch ----
def _offsets_from_file_start(path):  # data_offsets are relative to the end of the header, not the file
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    metadata = header.pop("__metadata__", None)
    return metadata, {k: np.frombuffer(raw[v["data_offsets"][0]:v["data_offsets"][1]], DTYPES[v["dtype"]])
                      .reshape(v["shape"]) for k, v in header.items()}


def _drop_the_name_everywhere(key, adapter_name):  # also "saves" base weights, and misses modules_to_save
    return key.replace(f".{adapter_name}", "")


def _weights_on_B(As, Bs, scalings, weights):  # the same B @ A, but not the split PEFT saves
    return np.concatenate(As, axis=0), np.concatenate([w * s * b for b, s, w in zip(Bs, scalings, weights)], axis=1)


MISTAKES = {
    "check_read_safetensors": (_offsets_from_file_start,),
    "check_peft_key": (_drop_the_name_everywhere,),
    "check_cat_adapter": (_weights_on_B,),
}

if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
