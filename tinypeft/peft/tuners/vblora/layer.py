"""VB-LoRA layers: A and B built from the tuner's shared vector bank [N, L] (N = num_vectors, L = vector_length).

For each sub-vector s of a factor, its logits z_s [N] pick the top k bank vectors I_s and mix them:
    w_s = softmax(z_s[I_s])                       [k]
    u_s = sum_j w_s[j] * bank[I_s[j]]              [L]
    A = u over vblora_logits_A [r, in/L, N] -> [r, in/L, L] -> [r, in]
    B = u over vblora_logits_B [out/L, r, N] -> [out/L, r, L] -> [out/L, L, r] -> [out, r]
    y = base(x) + (dropout(x) @ A^T) @ B^T

The top-k choice is piecewise constant (no gradient); the rest is gather, softmax, getitem, mul and sum, whose
backward passes are proven: d z_s[I_s] = softmax' (bank[I_s] . du_s) and zero elsewhere; d bank[v] sums w * du over
every sub-vector that picked v. Merge: delta W = B @ A (transposed for Conv1D).
"""
import numpy as np

from .... import nn
from ....creation import generator
from ..tuners_utils import FactorsLayer


def low_rank_matrix(logits, bank, topk):
    """[.., N] logits -> [.., L]: the softmax-weighted mixture of the topk bank vectors they rank highest."""
    index = np.argsort(-logits.data, axis=-1, kind="stable")[..., :topk]  # [.., k], largest first as torch.topk
    weights = logits.gather(-1, index).softmax(-1)                       # [.., k]
    return (weights.unsqueeze(-1) * bank[index]).sum(-2)                 # [.., k, L] -> [.., L]


class VBLoRALayer(FactorsLayer):
    adapter_layer_names = ("vblora_logits_A", "vblora_logits_B", "vblora_vector_bank")
    dropout_name, held_name = "vblora_dropout", "vblora_logits_A"
    other_param_names = ("r", "topk", "vblora_dropout")

    def __init__(self, base_layer, vblora_vector_bank, fan_in_fan_out=False):
        super().__init__(base_layer, fan_in_fan_out)
        self.r, self.topk = {}, {}
        self.vblora_dropout = nn.ModuleDict({})
        self.vblora_logits_A, self.vblora_logits_B = nn.ParameterDict({}), nn.ParameterDict({})
        self.vblora_vector_bank = vblora_vector_bank  # the tuner's ParameterDict (one object, many paths)

    def update_layer(self, adapter_name, config):
        r, L = config.r, config.vector_length
        if r <= 0:
            raise ValueError(f"`r` {r} should be a positive integer value")
        for name, size in (("in_features", self.in_features), ("out_features", self.out_features)):
            if size % L != 0:
                raise ValueError(f"`{name}` {size} must be divisible by `vector_length` {L}")
        self.r[adapter_name], self.topk[adapter_name] = r, config.topk
        p = config.vblora_dropout
        self.vblora_dropout[adapter_name] = nn.Dropout(p) if p > 0 else nn.Identity()
        N, std = config.num_vectors, config.init_logits_std
        shapes = {"A": (r, self.in_features // L, N), "B": (self.out_features // L, r, N)}
        for part, shape in shapes.items():
            logits = (generator().standard_normal(shape) * std).astype(np.float32)
            getattr(self, f"vblora_logits_{part}")[adapter_name] = nn.Parameter(logits)
        self.set_adapter(self.active_adapters)

    def lora_matrices(self, adapter):
        logits_A, logits_B = self.vblora_logits_A[adapter], self.vblora_logits_B[adapter]
        if self.training and np.isinf(logits_A.data[0, 0]).any():
            raise RuntimeError("Found infinity values in VB-LoRA logits. Ensure training was not resumed from a "
                               "`save_only_topk_weights` model.")
        bank, k = self.vblora_vector_bank[adapter], self.topk[adapter]
        A = low_rank_matrix(logits_A, bank, k).reshape(logits_A.shape[0], -1)                   # [r, in]
        B = low_rank_matrix(logits_B, bank, k).transpose(1, 2).reshape(-1, logits_B.shape[1])  # [out, r]
        return A, B

class Linear(VBLoRALayer):
    """VB-LoRA around nn.Linear (or GPT-2's Conv1D with fan_in_fan_out=True)."""
