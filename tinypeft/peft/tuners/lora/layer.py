"""LoRA layers: a frozen base layer plus, per adapter, lora_A [r, in] and lora_B [out, r].

One class per layer type, as in PEFT: `Linear` (nn.Linear, or GPT-2's Conv1D with fan_in_fan_out) and
`Embedding`, each with its own short forward; `LoraLayer` holds what they share (the adapters' settings,
merge and unmerge). Module names follow PEFT (`base_layer`, `lora_A.<adapter>`, `lora_B.<adapter>`,
`lora_dropout`, `lora_magnitude_vector`, `lora_embedding_A`), so state-dict keys and saved files match PEFT's.
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
from .init import olora_init, pissa_init


class LoraLayer(nn.Module, BaseTunerLayer):
    """What every LoRA layer shares. A subclass sets in_features/out_features and fan_in_fan_out (the base
    weight stored [in, out]) and defines _create_adapter, _init_adapter and forward."""

    adapter_layer_names = ("lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B", "lora_magnitude_vector")
    other_param_names = ("r", "lora_alpha", "scaling", "lora_dropout", "use_dora")

    def __init__(self, base_layer):
        super().__init__()
        self._init_tuner(base_layer)
        self.r, self.lora_alpha, self.scaling, self.use_dora = {}, {}, {}, {}
        self.lora_dropout = nn.ModuleDict({})
        self.lora_A, self.lora_B = nn.ModuleDict({}), nn.ModuleDict({})
        self.lora_embedding_A, self.lora_embedding_B = nn.ParameterDict({}), nn.ParameterDict({})
        self.lora_magnitude_vector = nn.ModuleDict({})
        self._dora_scale = {}  # adapter -> the per-row scale a DoRA merge multiplied in, to divide out exactly

    def update_layer(self, adapter_name, r, lora_alpha, lora_dropout, init_lora_weights, use_rslora,
                     use_dora=False, lora_bias=False):
        if r <= 0:
            raise ValueError(f"`r` should be a positive integer value but the value passed is {r}")
        self.r[adapter_name], self.lora_alpha[adapter_name] = r, lora_alpha
        self.scaling[adapter_name] = lora_alpha / math.sqrt(r) if use_rslora else lora_alpha / r
        self.lora_dropout[adapter_name] = nn.Dropout(lora_dropout) if lora_dropout > 0 else nn.Identity()
        self.use_dora[adapter_name] = use_dora
        self._create_adapter(adapter_name, r, use_dora, lora_bias)
        self.reset_lora_parameters(adapter_name, init_lora_weights)
        if use_dora:
            dora = nn.Module()
            dora.weight = nn.Parameter(self._weight_norm(adapter_name))  # m starts at ||W + sBA||: a no-op
            self.lora_magnitude_vector[adapter_name] = dora
        self.set_adapter(self.active_adapters)

    def reset_lora_parameters(self, adapter_name, init_lora_weights):
        with no_grad():
            self._init_adapter(adapter_name, init_lora_weights)

    # -- the update B A, in the base weight's layout ---------------------------------------------------
    def _factors(self, adapter):
        """(A, B) as arrays: A [r, in], B [out, r]."""
        if adapter in self.lora_embedding_A:
            return self.lora_embedding_A[adapter].data, self.lora_embedding_B[adapter].data
        return self.lora_A[adapter].weight.data, self.lora_B[adapter].weight.data

    def get_delta_weight(self, adapter):
        """s * B @ A as an array shaped like the base weight ([out, in]; [in, out] when fan_in_fan_out)."""
        A, B = self._factors(adapter)
        delta = B @ A * self.scaling[adapter]  # [out, r] @ [r, in] -> [out, in]
        return delta.T if self.fan_in_fan_out else delta

    def _base_weight(self):
        """The frozen weight as an array, in its own layout (a quantized layer dequantizes it)."""
        return self.base_layer.weight.data

    def _set_base_weight(self, W):
        self.base_layer.weight.data = W.astype(self.base_layer.weight.dtype)

    def _weight_norm(self, adapter):
        """DoRA's ||W + s B A|| per output row (a constant: no gradient flows through it)."""
        W = self._base_weight()
        W = W.T if self.fan_in_fan_out else W  # [out, in]
        A, B = self._factors(adapter)
        return np.linalg.norm((W + B @ A * self.scaling[adapter]).astype(np.float64), axis=1).astype(W.dtype)

    def _dora_merge_scale(self, adapter):
        """m / ||W + sBA||, shaped to multiply the base weight's output rows ([out, 1]; [1, out] when fan_in_fan_out)."""
        scale = self.lora_magnitude_vector[adapter].weight.data / self._weight_norm(adapter)
        return scale[None, :] if self.fan_in_fan_out else scale[:, None]

    def merge(self, safe_merge=False, adapter_names=None):
        """Add each active adapter's update into the base weight, so inference costs nothing extra."""
        for adapter in adapter_names or self.active_adapters:
            if adapter in self.merged_adapters or adapter not in self.scaling:
                continue
            merged = self._base_weight() + self.get_delta_weight(adapter)
            if self.use_dora.get(adapter):
                # W' = m * (W + sBA) / ||W + sBA||; keep the scale to undo it exactly
                self._dora_scale[adapter] = self._dora_merge_scale(adapter)
                merged = merged * self._dora_scale[adapter]
            lora_B = self.lora_B.get(adapter)
            if lora_B is not None and lora_B.bias is not None and self.base_layer.bias is None:
                raise RuntimeError("Impossible to merge LoRA with `lora_bias=True` because the base layer has no bias.")
            if safe_merge and not np.isfinite(merged).all():
                raise ValueError(f"NaNs detected in the merged weights. The adapter {adapter} seems to be broken")
            self._set_base_weight(merged)
            self._shift_bias(adapter, +1)
            self.merged_adapters.append(adapter)

    def unmerge(self):
        while self.merged_adapters:
            adapter = self.merged_adapters.pop()
            W = self._base_weight()
            unscaled = W / self._dora_scale.pop(adapter) if self.use_dora.get(adapter) else W
            self._set_base_weight(unscaled - self.get_delta_weight(adapter))
            self._shift_bias(adapter, -1)

    def _shift_bias(self, adapter, sign):
        """lora_B's own bias (lora_bias=True) goes into the base bias on merge (+1) and back out on unmerge (-1)."""
        lora_B = self.lora_B.get(adapter)
        if lora_B is not None and lora_B.bias is not None:
            self.base_layer.bias.data = self.base_layer.bias.data + sign * lora_B.bias.data * self.scaling[adapter]

    # -- forward -------------------------------------------------------------------------------------
    def _adapters_to_run(self):
        """The active adapters the forward adds; none when adapters are off or merged into the weight."""
        if self.disable_adapters and self.merged:
            self.unmerge()
        if self.disable_adapters or self.merged:
            return []
        return [a for a in self.active_adapters if a in self.scaling]

    def extra_repr(self):
        return f"r={self.r}, scaling={self.scaling}"


class Linear(LoraLayer):
    """LoRA around nn.Linear (W [out, in]) or GPT-2's Conv1D (W [in, out], fan_in_fan_out=True):
    y = x W^T + b + s * dropout(x) A^T B^T, and DoRA's rescaled version of it."""

    def __init__(self, base_layer, fan_in_fan_out=False):
        super().__init__(base_layer)
        self.fan_in_fan_out = fan_in_fan_out
        w = base_layer.weight.shape
        self.out_features, self.in_features = (w[1], w[0]) if fan_in_fan_out else w

    def _create_adapter(self, adapter_name, r, use_dora, lora_bias):
        self.lora_A[adapter_name] = nn.Linear(self.in_features, r, bias=False)
        self.lora_B[adapter_name] = nn.Linear(r, self.out_features, bias=lora_bias)

    def _init_adapter(self, adapter_name, init_lora_weights):
        """PEFT's init: B = 0 so the adapter starts as a no-op (A Kaiming-uniform, or N(0, 1/r) for "gaussian");
        "pissa..." / "olora" take A and B from the base weight instead (init.py)."""
        if isinstance(init_lora_weights, str) and init_lora_weights.startswith("pissa"):
            return pissa_init(self, adapter_name, init_lora_weights)
        if init_lora_weights == "olora":
            return olora_init(self, adapter_name)
        A, B = self.lora_A[adapter_name], self.lora_B[adapter_name]
        if init_lora_weights is False:
            nn.init.kaiming_uniform_(A.weight, a=math.sqrt(5))
            nn.init.normal_(B.weight)  # random B: a non-trivial adapter, for tests
            return
        if init_lora_weights == "gaussian":
            nn.init.normal_(A.weight, std=1 / self.r[adapter_name])
        else:
            nn.init.kaiming_uniform_(A.weight, a=math.sqrt(5))  # U(-1/sqrt(in), 1/sqrt(in))
        nn.init.zeros_(B.weight)
        if B.bias is not None:
            nn.init.zeros_(B.bias)

    def forward(self, x, *args, **kwargs):
        adapters = self._adapters_to_run()
        if not adapters:
            return self.base_layer(x, *args, **kwargs)
        out = self._lora(x, adapters[0], include_base=True)  # rides on the frozen layer's GEMM, one fused op
        for adapter in adapters[1:]:
            out = out + self._lora(x, adapter, include_base=False)  # further adapters add their own term
        return out

    def _lora(self, x, adapter, include_base):
        """One adapter's fused op: its LoRA (or DoRA) term, plus the frozen layer's x W^T + b if include_base."""
        W, b = self.base_layer.weight, (self.base_layer.bias if include_base else None)
        A, B, s = self.lora_A[adapter].weight, self.lora_B[adapter].weight, self.scaling[adapter]
        drop = self.lora_dropout[adapter]
        p = drop.p if isinstance(drop, nn.Dropout) else 0.0
        if self.use_dora[adapter]:
            m, norm = self.lora_magnitude_vector[adapter].weight, Tensor(self._weight_norm(adapter))
            y = dora_linear(x, W, b, A, B, m, norm, s, p, self.training, self.fan_in_fan_out, include_base)
        else:
            y = lora_linear(x, W, b, A, B, s, p, self.training, self.fan_in_fan_out, include_base)
        lora_bias = self.lora_B[adapter].bias
        return y if lora_bias is None else y + lora_bias * s


class Embedding(LoraLayer):
    """LoRA around nn.Embedding: lora_embedding_A [r, num_embeddings], lora_embedding_B [dim, r];
    y = W[ids] + s * A^T[ids] B^T.  DoRA (as PEFT): y <- g * (y + s * A^T[ids] B^T) with g = m / ||W^T + s B A||
    per embedding dimension (the norm over the vocabulary, a constant in backward), m = lora_magnitude_vector [dim]."""

    def __init__(self, base_layer):
        super().__init__(base_layer)
        self.fan_in_fan_out = True  # the table is [num_embeddings, dim], i.e. [in, out]
        self.in_features, self.out_features = base_layer.num_embeddings, base_layer.embedding_dim

    def _create_adapter(self, adapter_name, r, use_dora, lora_bias):
        self.lora_embedding_A[adapter_name] = nn.Parameter(np.zeros((r, self.in_features), np.float32))
        self.lora_embedding_B[adapter_name] = nn.Parameter(np.zeros((self.out_features, r), np.float32))

    def _init_adapter(self, adapter_name, init_lora_weights):
        """PEFT's embedding init is the other way round: A = 0, B ~ N(0, 1)."""
        if isinstance(init_lora_weights, str) and init_lora_weights not in ("gaussian",):
            raise NotImplementedError(f"init_lora_weights={init_lora_weights!r} on an Embedding layer is not "
                                      "supported by tinypeft (PiSSA and OLoRA are implemented for Linear layers).")
        rng = generator()
        A, B = self.lora_embedding_A[adapter_name], self.lora_embedding_B[adapter_name]
        B.data[...] = rng.standard_normal(B.shape)
        if init_lora_weights is False:
            A.data[...] = rng.standard_normal(A.shape)
        elif init_lora_weights == "gaussian":
            A.data[...] = rng.standard_normal(A.shape) / self.r[adapter_name]

    def forward(self, x, *args, **kwargs):
        out = self.base_layer(x, *args, **kwargs)
        for adapter in self._adapters_to_run():
            A, B = self.lora_embedding_A[adapter], self.lora_embedding_B[adapter]
            after_A = embedding(x, A.T, padding_idx=self.base_layer.padding_idx)  # rows of A^T: [..., r]
            lora = (after_A @ B.T) * self.scaling[adapter]  # [..., r] -> [..., dim]
            if self.use_dora[adapter]:
                g = self.lora_magnitude_vector[adapter].weight / Tensor(self._weight_norm(adapter))  # [dim]
                out = g * out + g * lora  # PEFT rescales everything before it, earlier adapters included
            else:
                out = out + lora
        return out
