"""Lily layers: per adapter lily_A (Linear in -> r), lily_B (Linear out -> num_B * r, its weight read as num_B
matrices B_e [r, out]) and lily_router (Linear r -> num_B), all without bias (PEFT's names):

    h = x A^T                                   [.., r]
    p = mean over all tokens of softmax(h W_router^T)    [num_B]   (one mix for the whole batch, as PEFT)
    y = base(x) + scaling * h (sum_e p_e B_e)   [.., out]

Linear maps, softmax, a mean and broadcast products: proven ops, so autograd gives every gradient. The
update depends on the batch through p, so there is no fixed delta W: merging is refused (PEFT's
NotImplementedError). A and B may be the same modules in several layers (LilyModel shares them).
"""
import math

from .... import functional as F
from .... import nn
from ....autograd import no_grad
from ..tuners_utils import BaseTunerLayer


class LilyLayer(nn.Module, BaseTunerLayer):
    adapter_layer_names = ("lily_A", "lily_B", "lily_router")
    other_param_names = ("r", "scaling", "stride_A", "num_B")

    def __init__(self, base_layer):
        super().__init__()
        self._init_linear_tuner(base_layer, NotImplementedError(
            f"Lily does not support target modules of type {type(base_layer)} yet."))
        self.r, self.scaling, self.stride_A, self.num_B = {}, {}, {}, {}
        self.lily_A, self.lily_B, self.lily_router = nn.ModuleDict({}), nn.ModuleDict({}), nn.ModuleDict({})

    def update_layer(self, adapter_name, r, config):
        if r <= 0:
            raise ValueError(f"`r` should be a positive integer value but the value passed is {r}")
        self.r[adapter_name], self.scaling[adapter_name] = r, config.scaling
        self.stride_A[adapter_name], self.num_B[adapter_name] = config.stride_A, config.num_B
        A = nn.Linear(self.in_features, r, bias=False)
        B = nn.Linear(self.out_features, config.num_B * r, bias=False)
        router = nn.Linear(r, config.num_B, bias=False)
        with no_grad():
            for m in (A, router) if config.init_weights else (A, router, B):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5))
            if config.init_weights:
                nn.init.zeros_(B.weight)
        self.lily_A[adapter_name], self.lily_B[adapter_name], self.lily_router[adapter_name] = A, B, router
        self.set_adapter(self.active_adapters)

    def merge(self, safe_merge=False, adapter_names=None):
        raise NotImplementedError("This method is not supported for Lily.")

    def unmerge(self):
        raise NotImplementedError("This method is not supported for Lily.")

    def get_delta_weight(self, adapter):
        raise NotImplementedError("This method is not supported for Lily.")

    def forward(self, x, *args, **kwargs):
        result = self.base_layer(x, *args, **kwargs)
        if self.disable_adapters:
            return result
        for adapter in self.active_adapters:
            if adapter not in self.lily_A:
                continue
            num_B = self.num_B[adapter]
            B = self.lily_B[adapter].weight.reshape(num_B, -1, self.out_features)      # [num_B, r, out]
            hidden = self.lily_A[adapter](x)                                            # [.., r]
            probs = F.softmax(self.lily_router[adapter](hidden), -1)                    # [.., num_B]
            mix = probs.reshape(-1, num_B).mean(0)                                      # [num_B]
            combined = (mix.reshape(num_B, 1, 1) * B).sum(0)                            # [r, out]
            result = result + (hidden @ combined) * self.scaling[adapter]
        return result


class LilyLinear(LilyLayer):
    """Lily around nn.Linear."""
