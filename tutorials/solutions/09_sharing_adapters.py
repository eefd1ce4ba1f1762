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
    check_peft_key,
    check_predict_mix_ranks,
    check_write_safetensors,
)

DTYPES = {np.dtype(np.float64): "F64", np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
          np.dtype(np.int64): "I64", np.dtype(np.int32): "I32", np.dtype(np.int16): "I16", np.dtype(np.int8): "I8",
          np.dtype(np.uint8): "U8", np.dtype(np.bool_): "BOOL"}


# ---- Exercise 1 ----
def write_safetensors(path, tensors, metadata=None):
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for key, arr in tensors.items():
        raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()  # row-major, LE
        header[key] = {"dtype": DTYPES[np.dtype(arr.dtype)], "shape": list(arr.shape),
                       "data_offsets": [offset, offset + len(raw)]}  # counted from the end of the header
        chunks.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-(8 + len(head)) % 8)  # pad with spaces: the data then starts on an 8-byte boundary
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(chunks))
    os.replace(tmp, path)  # atomically


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
# "cat" stacks the ranks: B has 4 + 4 columns, and the two updates are independent, so rank 8. "linear" adds the
# A's and the B's (each scaled): B is still [out, 4], so the mix has rank 4 whatever the two updates were.
mix_ranks = {"cat": 8, "linear": 4}


EXERCISES = {
    "check_write_safetensors": (write_safetensors,),
    "check_peft_key": (peft_key,),
    "check_predict_mix_ranks": (mix_ranks,),
}


# ---- mistakes the checks must catch ----
def _offsets_from_file_start(path, tensors, metadata=None):  # data_offsets must count from the end of the header
    header, chunks, offset = {"__metadata__": dict(metadata or {})}, [], 0
    body = json.dumps({k: {"dtype": DTYPES[np.dtype(a.dtype)], "shape": list(a.shape), "data_offsets": [0, 0]}
                       for k, a in tensors.items()}).encode()
    offset = 8 + len(body) + 64  # a guess at where the data starts in the file
    for key, arr in tensors.items():
        raw = np.ascontiguousarray(arr).tobytes()
        header[key] = {"dtype": DTYPES[np.dtype(arr.dtype)], "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    head = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(chunks))


def _drop_the_name_everywhere(key, adapter_name):  # also "saves" base weights, and misses modules_to_save
    return key.replace(f".{adapter_name}", "")


_both_add_up = {"cat": 8, "linear": 8}  # "linear" is not the weighted sum of the two updates


STUBS = {"check_predict_mix_ranks": (None,)}

MISTAKES = {
    "check_write_safetensors": (_offsets_from_file_start,),
    "check_peft_key": (_drop_the_name_everywhere,),
    "check_predict_mix_ranks": (_both_add_up,),
}

if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
