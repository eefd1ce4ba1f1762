"""Solutions to tutorials/17_memory.md's exercises (and the mistakes their checks must catch).

    python tutorials/solutions/17_memory.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tinypeft.course.checks_17 import check_checkpointed_activation_bytes, check_training_state_bytes  # noqa: E402


# ---- Exercise 1 ----
def checkpointed_activation_bytes(config, B, T, checkpointed, loss_share):
    d, H, L = config.n_embd, config.n_head, config.n_layer
    per_block = [d if i in checkpointed else 20 * d + H * T + 2 for i in range(L)]  # a checkpointed block: its input
    return B * T * (sum(per_block) + 2 * d + 1) * 4 + loss_share  # + the final layer norm and the output layer's input


# ---- Exercise 2 ----
def training_state_bytes(model):
    params = list(model.parameters())  # a tied weight once
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return {"parameters": 4 * sum(p.numel() for p in params), "gradients": 4 * trainable, "optimizer": 8 * trainable}


EXERCISES = {
    "check_checkpointed_activation_bytes": (checkpointed_activation_bytes,),
    "check_training_state_bytes": (training_state_bytes,),
}


# ---- mistakes the checks must catch ----
def _checkpointed_blocks_keep_nothing(config, B, T, checkpointed, loss_share):  # forgets the input a checkpointed block keeps
    d, H, L = config.n_embd, config.n_head, config.n_layer
    per_block = [0 if i in checkpointed else 20 * d + H * T + 2 for i in range(L)]
    return B * T * (sum(per_block) + 2 * d + 1) * 4 + loss_share


def _state_for_every_parameter(model):  # gradients and Adam moments for the frozen weights too
    n = sum(p.numel() for p in model.parameters())
    return {"parameters": 4 * n, "gradients": 4 * n, "optimizer": 8 * n}


MISTAKES = {
    "check_checkpointed_activation_bytes": (_checkpointed_blocks_keep_nothing,),
    "check_training_state_bytes": (_state_for_every_parameter,),
}

if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
