"""TinyLoRA layers: LoRA factors from the frozen SVD of the base weight, turned by a trained r x r matrix R:

    W = U S V^T:  A = sqrt(S_r) V_r^T  [r, in],  B = U_r sqrt(S_r)  [out, r]      (frozen buffers)
    R = sum_i v_i P_i = (v [1, u] @ P [u, r*r]).reshape(r, r)                   (v: the tuner's, trained)
    Linear:     y = base(x) + ((dropout(x) @ A^T) @ R^T) @ B^T = base(x) + dropout(x) (R A)^T B^T
    Embedding:  y = base(ids) + dropout(B[ids]) @ R @ A

Matmuls, reshapes and an embedding lookup: autograd derives d v_i = <P_i, dR> from proven ops.
Merge: delta W = B R A (transposed for Conv1D).
"""
import numpy as np

from .... import functional as F
from .... import nn
from ....tensor import Tensor
from ..tuners_utils import FactorsLayer
from ..vera.layer import BufferDict


class TinyLoraLayer(FactorsLayer):
    adapter_layer_names = ("tinylora_v",)
    other_param_names = ("r", "u", "tinylora_dropout", "tinylora_A", "tinylora_B", "tinylora_P", "tinylora_v_key")
    dropout_name, held_name = "tinylora_dropout", "tinylora_A"

    def __init__(self, base_layer, tinylora_v, layer_idx, fan_in_fan_out=False):
        if isinstance(base_layer, nn.Embedding):  # table [num, dim]: ids in, rows of dim out
            nn.Module.__init__(self)
            self._init_tuner(base_layer)
            self.out_features, self.in_features = base_layer.weight.shape
            self.fan_in_fan_out = False
        else:
            super().__init__(base_layer, fan_in_fan_out)
        self.r, self.u, self.tinylora_v_key = {}, {}, {}
        self.tinylora_dropout = nn.ModuleDict({})
        self.tinylora_A, self.tinylora_B, self.tinylora_P = BufferDict(), BufferDict(), BufferDict()
        self.tinylora_v = tinylora_v  # the tuner's ModuleDict: adapter -> group -> v [u] (one object, many paths)
        self._layer_idx = layer_idx   # seeds this layer's projections

    def update_layer(self, adapter_name, v_key, config):
        self.u[adapter_name], self.tinylora_v_key[adapter_name] = config.u, v_key
        p = config.tinylora_dropout
        self.tinylora_dropout[adapter_name] = nn.Dropout(p) if p > 0 else nn.Identity()
        W = self.base_layer.weight.data.astype(np.float32)
        W = W.T if self.fan_in_fan_out else W                                  # [out, in] ([num, dim] for Embedding)
        U, S, Vh = np.linalg.svd(W, full_matrices=False)
        r = min(config.r, *W.shape)
        root = np.sqrt(S[:r])
        self.tinylora_A[adapter_name] = Tensor(np.ascontiguousarray(root[:, None] * Vh[:r]))  # [r, in]
        self.tinylora_B[adapter_name] = Tensor(np.ascontiguousarray(U[:, :r] * root[None]))   # [out, r]
        self.r[adapter_name] = r
        rng = np.random.default_rng(config.projection_seed + self._layer_idx)
        self.tinylora_P[adapter_name] = Tensor((rng.standard_normal((config.u, r, r)) / r ** 0.5).astype(np.float32))
        self.set_adapter(self.active_adapters)

    def _R(self, adapter):
        v = self.tinylora_v[adapter][self.tinylora_v_key[adapter]]   # [u]
        P = self.tinylora_P[adapter]                                 # [u, r, r]
        u, r = P.shape[0], P.shape[1]
        return (v.reshape(1, u) @ P.reshape(u, r * r)).reshape(r, r)  # [r, r]

    def lora_matrices(self, adapter):
        """(R A [r, in], B [out, r]): the factors FactorsLayer multiplies."""
        return self._R(adapter) @ self.tinylora_A[adapter], self.tinylora_B[adapter]


class Linear(TinyLoraLayer):
    """TinyLoRA around nn.Linear (or GPT-2's Conv1D with fan_in_fan_out=True)."""


class Embedding(TinyLoraLayer):
    """TinyLoRA around nn.Embedding: B's rows are looked up by the ids (the embedding table is [num, dim])."""

    def adapter_output(self, x, adapter):
        RA, B = self.lora_matrices(adapter)
        return self.tinylora_dropout[adapter](F.embedding(x, B)) @ RA  # [..] -> [.., r] -> [.., dim]
