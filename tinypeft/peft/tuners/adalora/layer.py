"""AdaLoRA layers: LoRA in SVD form. Per adapter lora_A [r, in'] (rows: right singular vectors), lora_E [r, 1]
(singular values), lora_B [out, r] (columns: left singular vectors), and a frozen ranknum [1] = the initial r:

    delta W = B (A * E) * s / (ranknum + 1e-5)         s = lora_alpha (or r when lora_alpha is 0)
    Linear:  y = base(x) + dropout(x) (A * E)^T B^T * s / (ranknum + 1e-5)
    Conv2d:  y = base(x) + conv(dropout(x), delta W viewed [out, in, kh, kw], the base's stride/padding/...)

(in' = in * kh * kw for a conv). Pruning a rank sets its E to 0 (RankAllocator); ranknum stays the initial rank,
so pruning does not rescale the others. Only mul, matmul and reshape: autograd gives the gradients.
"""
import numpy as np

from .... import functional as F
from .... import nn
from ....autograd import no_grad
from ....models.gpt2 import Conv1D
from ....tensor import Tensor
from ..tuners_utils import BaseTunerLayer


class AdaLoraLayer(nn.Module, BaseTunerLayer):
    adapter_layer_names = ("lora_A", "lora_B", "lora_E", "lora_embedding_A", "lora_embedding_B")
    other_param_names = ("r", "lora_alpha", "scaling", "lora_dropout", "ranknum")

    def __init__(self, base_layer, fan_in_fan_out=False):
        super().__init__()
        self._init_tuner(base_layer)
        self.r, self.lora_alpha, self.scaling, self.lora_dropout = {}, {}, {}, {}
        self.lora_A, self.lora_B, self.lora_E = nn.ParameterDict({}), nn.ParameterDict({}), nn.ParameterDict({})
        self.lora_embedding_A, self.lora_embedding_B = nn.ParameterDict({}), nn.ParameterDict({})  # never used
        self.ranknum = nn.ParameterDict({})
        self.fan_in_fan_out = fan_in_fan_out
        if isinstance(base_layer, Conv1D):
            self.in_features, self.out_features = base_layer.weight.shape  # stored [in, out]
        elif isinstance(base_layer, nn.Conv2d):
            self.in_features, self.out_features = base_layer.in_channels, base_layer.out_channels
        else:
            self.in_features, self.out_features = base_layer.in_features, base_layer.out_features

    def _fan_in(self):
        return self.in_features

    def update_layer(self, adapter_name, r, lora_alpha, config):
        if r < 0:
            raise ValueError(f"`r` should be a positive integer or 0, but the value passed is {r}")
        self.r[adapter_name], self.lora_alpha[adapter_name] = r, lora_alpha
        self.lora_dropout[adapter_name] = config.lora_dropout
        A = nn.Parameter(nn.init.empty(r, self._fan_in()))
        E = nn.Parameter(nn.init.empty(r, 1))
        B = nn.Parameter(nn.init.empty(self.out_features, r))
        with no_grad():
            for p in (A, E, B):  # PEFT draws torch.randn; init_lora_weights=True then resets them
                nn.init.normal_(p)
            if config.init_lora_weights:
                nn.init.zeros_(E)
                nn.init.normal_(A, mean=0.0, std=0.02)
                nn.init.normal_(B, mean=0.0, std=0.02)
        self.lora_A[adapter_name], self.lora_E[adapter_name], self.lora_B[adapter_name] = A, E, B
        self.ranknum[adapter_name] = nn.Parameter(np.full(1, float(r), dtype=np.float32), requires_grad=False)
        self.scaling[adapter_name] = lora_alpha if lora_alpha > 0 else float(r)
        self.set_adapter(self.active_adapters)

    def set_adapter(self, adapter_names):
        super().set_adapter(adapter_names)
        for p in self.ranknum.values():
            p.requires_grad = False  # a count, never trained

    def _delta(self, adapter):
        """B (A * E) * s / (ranknum + 1e-5): [out, in'] as a Tensor."""
        A, E, B = self.lora_A[adapter], self.lora_E[adapter], self.lora_B[adapter]
        return (B @ (A * E)) * self.scaling[adapter] / (self.ranknum[adapter] + 1e-5)

    def _dropout(self, x, adapter):
        p = self.lora_dropout[adapter]
        return F.dropout(x, p, self.training) if p > 0 else x

    def get_delta_weight(self, adapter):
        with no_grad():
            d = self._delta(adapter).data
        if isinstance(self.base_layer, nn.Conv2d):
            return d.reshape(self.base_layer.weight.shape)
        return d.T if self.fan_in_fan_out else d


class SVDLinear(AdaLoraLayer):
    """AdaLoRA around nn.Linear or GPT-2's Conv1D."""

    def forward(self, x, *args, **kwargs):
        active = self._adapters_to_run(self.lora_A)
        result = self.base_layer(x, *args, **kwargs)
        for a in active:
            A, E, B = self.lora_A[a], self.lora_E[a], self.lora_B[a]
            h = self._dropout(x, a) @ (A * E).transpose(0, 1) @ B.transpose(0, 1)  # [.., in] -> [.., r] -> [.., out]
            result = result + h * self.scaling[a] / (self.ranknum[a] + 1e-5)
        return result


class SVDConv2d(AdaLoraLayer):
    """AdaLoRA around nn.Conv2d: A [r, in * kh * kw]; the delta is convolved like the base kernel."""

    def _fan_in(self):
        kh, kw = self.base_layer.kernel_size
        return self.in_features * kh * kw

    def forward(self, x, *args, **kwargs):
        active = self._adapters_to_run(self.lora_A)
        result = self.base_layer(x, *args, **kwargs)
        base = self.base_layer
        for a in active:
            dw = self._delta(a).reshape(*base.weight.shape)
            result = result + F.conv2d(self._dropout(x, a), dw, None, base.stride, base.padding, base.dilation,
                                       base.groups)
        return result


def orthogonal_regularization(params):
    """mean over the given (name, p) of ||p p^T - I||_F (lora_A) or ||p^T p - I||_F (lora_B): AdaLoRA's penalty
    keeping A's rows and B's columns near orthonormal, as PEFT adds it to the loss."""
    total, n = None, 0
    for name, p in params:
        cov = p @ p.transpose(0, 1) if "lora_A" in name else p.transpose(0, 1) @ p
        diff = cov - Tensor(np.eye(cov.shape[0], dtype=cov.dtype))
        norm = (diff * diff).sum().sqrt()
        total = norm if total is None else total + norm
        n += 1
    return None if total is None else total / n
