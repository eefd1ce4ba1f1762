"""LoRA layers: a frozen base layer plus, per adapter, lora_A [r, in] and lora_B [out, r].

Module names follow PEFT (`base_layer`, `lora_A.<adapter>`, `lora_B.<adapter>`, `lora_dropout`,
`lora_magnitude_vector`, `lora_embedding_A`), so state-dict keys and saved files match PEFT's.
"""
import math

import numpy as np

from .... import nn
from ....autograd import no_grad
from ....creation import generator
from ....ops.lora import dora_linear, lora_linear
from ....ops.shape import embedding
from ....tensor import Tensor
from ..tuners_utils import BaseTunerLayer


class LoraLayer(nn.Module, BaseTunerLayer):
    adapter_layer_names = ("lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B", "lora_magnitude_vector")
    other_param_names = ("r", "lora_alpha", "scaling", "lora_dropout", "use_dora")

    def __init__(self, base_layer, fan_in_fan_out=False):
        super().__init__()
        self._init_tuner(base_layer)
        self.fan_in_fan_out = fan_in_fan_out
        self.r, self.lora_alpha, self.scaling, self.use_dora = {}, {}, {}, {}
        self.lora_dropout = nn.ModuleDict({})
        self.lora_A, self.lora_B = nn.ModuleDict({}), nn.ModuleDict({})
        self.lora_embedding_A, self.lora_embedding_B = nn.ParameterDict({}), nn.ParameterDict({})
        self.lora_magnitude_vector = nn.ModuleDict({})
        w = base_layer.weight
        if isinstance(base_layer, nn.Embedding):
            self.in_features, self.out_features = base_layer.num_embeddings, base_layer.embedding_dim
        else:  # [out, in], or [in, out] for Conv1D (fan_in_fan_out)
            self.out_features, self.in_features = (w.shape[1], w.shape[0]) if fan_in_fan_out else w.shape

    def update_layer(self, adapter_name, r, lora_alpha, lora_dropout, init_lora_weights, use_rslora,
                     use_dora=False, lora_bias=False):
        if r <= 0:
            raise ValueError(f"`r` should be a positive integer value but the value passed is {r}")
        self.r[adapter_name], self.lora_alpha[adapter_name] = r, lora_alpha
        self.scaling[adapter_name] = lora_alpha / math.sqrt(r) if use_rslora else lora_alpha / r
        self.lora_dropout[adapter_name] = nn.Dropout(lora_dropout) if lora_dropout > 0 else nn.Identity()
        self.use_dora[adapter_name] = use_dora
        if isinstance(self.base_layer, nn.Embedding):
            if use_dora:
                raise NotImplementedError("DoRA on an Embedding layer is not supported by tinypeft.")
            self.lora_embedding_A[adapter_name] = nn.Parameter(np.zeros((r, self.in_features), np.float32))
            self.lora_embedding_B[adapter_name] = nn.Parameter(np.zeros((self.out_features, r), np.float32))
        else:
            self.lora_A[adapter_name] = nn.Linear(self.in_features, r, bias=False)
            self.lora_B[adapter_name] = nn.Linear(r, self.out_features, bias=lora_bias)
        self.reset_lora_parameters(adapter_name, init_lora_weights)
        if use_dora:
            dora = nn.Module()
            dora.weight = nn.Parameter(self._weight_norm(adapter_name))  # m starts at ||W + sBA||: a no-op
            self.lora_magnitude_vector[adapter_name] = dora
        self.set_adapter(self.active_adapters)

    def reset_lora_parameters(self, adapter_name, init_lora_weights):
        """PEFT's init: B = 0 so the adapter starts as a no-op (A Kaiming-uniform, or N(0, 1/r) for "gaussian")."""
        rng = generator()
        r = self.r[adapter_name]
        with no_grad():
            if adapter_name in self.lora_A:
                A, B = self.lora_A[adapter_name], self.lora_B[adapter_name]
                if init_lora_weights is False:
                    nn.init.kaiming_uniform_(A.weight, a=math.sqrt(5))
                    nn.init.normal_(B.weight)  # random B: a non-trivial adapter, for tests
                    return
                if init_lora_weights == "gaussian":
                    nn.init.normal_(A.weight, std=1 / r)
                else:
                    nn.init.kaiming_uniform_(A.weight, a=math.sqrt(5))  # U(-1/sqrt(in), 1/sqrt(in))
                nn.init.zeros_(B.weight)
                if B.bias is not None:
                    nn.init.zeros_(B.bias)
            elif adapter_name in self.lora_embedding_A:
                # the embedding case is the other way round: A = 0, B ~ N(0, 1)
                A, B = self.lora_embedding_A[adapter_name], self.lora_embedding_B[adapter_name]
                B.data[...] = rng.standard_normal(B.shape)
                if init_lora_weights is False:
                    A.data[...] = rng.standard_normal(A.shape)
                elif init_lora_weights == "gaussian":
                    A.data[...] = rng.standard_normal(A.shape) / r

    # -- the update B A, in the base weight's layout ---------------------------------------------------
    def get_delta_weight(self, adapter):
        """s * B @ A as an array shaped like the base weight ([in, out] for Conv1D, [num, dim] for Embedding)."""
        if adapter in self.lora_embedding_A:
            A, B = self.lora_embedding_A[adapter].data, self.lora_embedding_B[adapter].data
            return (B @ A).T * self.scaling[adapter]  # [dim, r] @ [r, num] -> [num, dim]
        delta = self.lora_B[adapter].weight.data @ self.lora_A[adapter].weight.data * self.scaling[adapter]
        return delta.T if self.fan_in_fan_out else delta  # [out, in]

    def _weight_norm(self, adapter):
        """DoRA's ||W + s B A|| per output row (a constant: no gradient flows through it)."""
        W = self.base_layer.weight.data
        W = W.T if self.fan_in_fan_out else W  # [out, in]
        delta = self.lora_B[adapter].weight.data @ self.lora_A[adapter].weight.data * self.scaling[adapter]
        return np.linalg.norm((W + delta).astype(np.float64), axis=1).astype(W.dtype)

    def merge(self, safe_merge=False, adapter_names=None):
        """Add each active adapter's update into the base weight, so inference costs nothing extra."""
        for adapter in adapter_names or self.active_adapters:
            if adapter in self.merged_adapters or adapter not in self.scaling:
                continue
            W = self.base_layer.weight
            if self.use_dora.get(adapter):
                # W' = m * (W + sBA) / ||W + sBA||; keep the scale to undo it exactly
                norm = self._weight_norm(adapter)
                scale = self.lora_magnitude_vector[adapter].weight.data / norm
                scale = scale[None, :] if self.fan_in_fan_out else scale[:, None]
                merged = (W.data + self.get_delta_weight(adapter)) * scale
                self._dora_scale = getattr(self, "_dora_scale", {})
                self._dora_scale[adapter] = scale
            else:
                merged = W.data + self.get_delta_weight(adapter)
            if safe_merge and not np.isfinite(merged).all():
                raise ValueError(f"NaNs detected in the merged weights. The adapter {adapter} seems to be broken")
            W.data = merged.astype(W.dtype)
            if self.lora_B.get(adapter) is not None and self.lora_B[adapter].bias is not None:
                self.base_layer.bias.data = self.base_layer.bias.data + self.lora_B[adapter].bias.data * self.scaling[adapter]
            self.merged_adapters.append(adapter)

    def unmerge(self):
        while self.merged_adapters:
            adapter = self.merged_adapters.pop()
            W = self.base_layer.weight
            if self.use_dora.get(adapter):
                W.data = (W.data / self._dora_scale.pop(adapter) - self.get_delta_weight(adapter)).astype(W.dtype)
            else:
                W.data = (W.data - self.get_delta_weight(adapter)).astype(W.dtype)
            if self.lora_B.get(adapter) is not None and self.lora_B[adapter].bias is not None:
                self.base_layer.bias.data = self.base_layer.bias.data - self.lora_B[adapter].bias.data * self.scaling[adapter]

    # -- forward -------------------------------------------------------------------------------------
    def forward(self, x, *args, **kwargs):
        active = [a for a in self.active_adapters if a in self.scaling]
        if self.disable_adapters or self.merged or not active:
            if self.disable_adapters and self.merged:
                self.unmerge()
            return self.base_layer(x, *args, **kwargs)
        if isinstance(self.base_layer, nn.Embedding):
            return self._embedding_forward(x, active)
        W, b = self.base_layer.weight, self.base_layer.bias
        out = None
        for adapter in active:
            drop = self.lora_dropout[adapter]
            p = drop.p if isinstance(drop, nn.Dropout) else 0.0
            A, B = self.lora_A[adapter].weight, self.lora_B[adapter].weight
            s = self.scaling[adapter]
            if self.use_dora[adapter]:
                norm = Tensor(self._weight_norm(adapter))
                m = self.lora_magnitude_vector[adapter].weight
                y = dora_linear(x, W, b if out is None else None, A, B, m, norm, s, p, self.training,
                                self.fan_in_fan_out)
                out = y if out is None else out + y - _base(x, W, self.fan_in_fan_out)
            elif out is None:  # the first adapter rides on the frozen layer's GEMM, in one fused op
                out = lora_linear(x, W, b, A, B, s, p, self.training, self.fan_in_fan_out)
            else:  # further active adapters add only their own low-rank term
                xd = drop(x)
                out = out + (xd @ A.T) @ B.T * s
            if self.lora_B[adapter].bias is not None:
                out = out + self.lora_B[adapter].bias * s
        return out

    def _embedding_forward(self, ids, active):
        out = self.base_layer(ids)
        for adapter in active:
            A, B = self.lora_embedding_A[adapter], self.lora_embedding_B[adapter]
            # rows of A^T picked by the ids: [.., r], then @ B^T: [.., dim]
            after_A = embedding(ids, A.T, padding_idx=self.base_layer.padding_idx)
            out = out + (after_A @ B.T) * self.scaling[adapter]
        return out

    def extra_repr(self):
        return f"r={self.r}, scaling={self.scaling}"


def _base(x, W, fan_in_fan_out):
    from ....ops.arithmetic import matmul

    return matmul(x, W if fan_in_fan_out else W.T)


class Linear(LoraLayer):
    """LoRA around nn.Linear (or GPT-2's Conv1D with fan_in_fan_out=True)."""


class Embedding(LoraLayer):
    """LoRA around nn.Embedding: lora_embedding_A [r, num_embeddings], lora_embedding_B [dim, r]."""
