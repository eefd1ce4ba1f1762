"""PEANuT layers: per adapter peanut_A (Linear out -> r), peanut_B (Linear r -> out), and ModuleLists
peanut_encoders / peanut_decoders of `depth` Linear r -> r, all without bias (PEFT's names). From the frozen
weight W [out, in] (act = act_fn):

    h_0 = act(W^T A^T)                                     [in, r]
    h_{i+1} = act(enc_i(h_i))                              i < depth, keeping h_0 .. h_{depth-1}
    g = h_depth;  g = act(dec_i(g)) + h_{depth-1-i}        i < depth
    delta W = scaling * (g B^T)^T                          [out, in]
    y = base(x) + x delta W^T

Linear maps and activations of Tensors: autograd gives the gradients. Merging adds delta W computed from the
weight as it was before the first merge (kept), and unmerging restores that weight, as PEFT does.
"""
import math

from .... import nn
from ....autograd import no_grad
from ....models.activations import ACT2FN
from ....tensor import Tensor
from ..tuners_utils import BaseTunerLayer


class PeanutLayer(nn.Module, BaseTunerLayer):
    adapter_layer_names = ("peanut_A", "peanut_B", "peanut_encoders", "peanut_decoders")
    other_param_names = ("r", "depth", "scaling", "act_fn", "res_num")

    def __init__(self, base_layer):
        super().__init__()
        self._init_linear_tuner(base_layer, NotImplementedError(
            f"PEANuT does not support target modules of type {type(base_layer)} yet."))
        self.r, self.depth, self.scaling, self.act_fn, self.res_num = {}, {}, {}, {}, {}
        self.peanut_A, self.peanut_B = nn.ModuleDict({}), nn.ModuleDict({})
        self.peanut_encoders, self.peanut_decoders = nn.ModuleDict({}), nn.ModuleDict({})
        self._base_weight_before_merge = None

    def update_layer(self, adapter_name, r, config):
        depth = config.depth
        self.r[adapter_name], self.depth[adapter_name], self.res_num[adapter_name] = r, depth, depth
        self.scaling[adapter_name], self.act_fn[adapter_name] = config.scaling, config.act_fn
        A, B = nn.Linear(self.out_features, r, bias=False), nn.Linear(r, self.out_features, bias=False)
        encoders = nn.ModuleList([nn.Linear(r, r, bias=False) for _ in range(depth)])
        decoders = nn.ModuleList([nn.Linear(r, r, bias=False) for _ in range(depth)])
        with no_grad():
            for m in [A, *encoders, *decoders] + ([] if config.init_weights else [B]):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5))
            if config.init_weights:
                nn.init.zeros_(B.weight)
        self.peanut_A[adapter_name], self.peanut_B[adapter_name] = A, B
        self.peanut_encoders[adapter_name], self.peanut_decoders[adapter_name] = encoders, decoders
        self.set_adapter(self.active_adapters)

    def delta(self, adapter, W):
        """delta W [out, in] from the weight W [out, in] (a Tensor, differentiable in the adapter's weights)."""
        act, n = ACT2FN[self.act_fn[adapter]], self.res_num[adapter]
        h = act(self.peanut_A[adapter](W.T))                     # [in, r]
        residuals = []
        for encoder in self.peanut_encoders[adapter]:
            residuals.append(h)
            h = act(encoder(h))
        for i, decoder in enumerate(self.peanut_decoders[adapter]):
            h = act(decoder(h)) + residuals[n - 1 - i]
        return (self.peanut_B[adapter](h) * self.scaling[adapter]).T

    def merge(self, safe_merge=False, adapter_names=None):
        if self._base_weight_before_merge is None:
            self._base_weight_before_merge = self.base_layer.weight.data.copy()
        W0 = Tensor(self._base_weight_before_merge)
        self._merge_adapters(lambda a, W: W + self.delta(a, W0).data, adapter_names, safe_merge, self.peanut_A)

    def unmerge(self):
        if self._base_weight_before_merge is not None:
            self.base_layer.weight.data = self._base_weight_before_merge
        self._base_weight_before_merge = None
        self.merged_adapters.clear()

    def forward(self, x, *args, **kwargs):
        active = self._adapters_to_run(self.peanut_A)
        result = self.base_layer(x, *args, **kwargs)
        for adapter in active:
            result = result + x @ self.delta(adapter, self.base_layer.weight).T
        return result


class PeanutLinear(PeanutLayer):
    """PEANuT around nn.Linear."""

