"""Solutions to tutorials/12_real_llm.md's exercises (and the mistakes their checks must catch).

    python tutorials/solutions/12_real_llm.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tinypeft.course.checks_12 import (  # noqa: E402
    check_dequantize_q4_0_block,
    check_render_smollm2,
    check_unpermute_qk,
)

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


# ---- Exercise 1 ----
def dequantize_q4_0_block(block):
    block = np.frombuffer(bytes(block), dtype=np.uint8)
    d = block[:2].view(np.float16).astype(np.float32)[0]
    packed = block[2:]
    q = np.concatenate([packed & 0x0F, packed >> 4]).astype(np.int8) - 8  # [32]
    return d * q.astype(np.float32)


# ---- Exercise 2 ----
def unpermute(w, n_head):
    hd = w.shape[0] // n_head
    # file rows of a head, as [hd/2 pairs, 2]; transformers wants [2 halves, hd/2]
    return w.reshape(n_head, hd // 2, 2, -1).swapaxes(1, 2).reshape(w.shape)


# ---- Exercise 3 ----
def render(messages, add_generation_prompt):
    if messages[0]["role"] != "system":
        messages = [{"role": "system", "content": SYSTEM}] + messages
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


EXERCISES = {
    "check_dequantize_q4_0_block": (dequantize_q4_0_block,),
    "check_unpermute_qk": (unpermute,),
    "check_render_smollm2": (render,),
}


# ---- mistakes the checks must catch ----
def _q4_0_without_offset(block):  # forgets the - 8: every weight shifted by 8 * d
    block = np.frombuffer(bytes(block), dtype=np.uint8)
    d = block[:2].view(np.float16).astype(np.float32)[0]
    return d * np.concatenate([block[2:] & 0x0F, block[2:] >> 4]).astype(np.float32)


def _permute_again(w, n_head):  # applies the converter's permutation instead of undoing it
    hd = w.shape[0] // n_head
    return w.reshape(n_head, 2, hd // 2, -1).swapaxes(1, 2).reshape(w.shape)


def _render_without_default_system(messages, add_generation_prompt):
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


MISTAKES = {
    "check_dequantize_q4_0_block": (_q4_0_without_offset,),
    "check_unpermute_qk": (_permute_again,),
    "check_render_smollm2": (_render_without_default_system,),
}

if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
