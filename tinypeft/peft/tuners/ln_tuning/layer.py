"""LNTuningLayer: per adapter a trainable deep copy of the wrapped module (`ln_tuning_layers.<adapter>`).

The forward runs the active adapter's copy instead of the frozen original; merging swaps the copy in as
base_layer (and unmerging swaps it back), so nothing is computed, only exchanged. One adapter at a time.
No new op: the copy is the same module type, with the same forward and backward.
"""
import copy

from .... import nn
from ..tuners_utils import BaseTunerLayer


class LNTuningLayer(nn.Module, BaseTunerLayer):
    adapter_layer_names = ("ln_tuning_layers",)

    def __init__(self, base_layer):
        super().__init__()
        self._init_tuner(base_layer)
        self.ln_tuning_layers = nn.ModuleDict({})

    def update_layer(self, adapter_name):
        self.ln_tuning_layers[adapter_name] = copy.deepcopy(self.base_layer)
        self.set_adapter(adapter_name)

    def merge(self, safe_merge=False, adapter_names=None):
        names = [a for a in (adapter_names or self.active_adapters) if a not in self.merged_adapters]
        if not names:
            return
        if len(names) > 1:
            raise ValueError(f"Trying to merge {len(names)} adapters, but LN tuning does not allow merging more "
                             "than one adapter at a time")
        if self.merged:
            self.unmerge()
        self.base_layer, self.ln_tuning_layers[names[0]] = self.ln_tuning_layers[names[0]], self.base_layer
        self.merged_adapters.append(names[0])

    def unmerge(self):
        if self.merged:
            name = self.merged_adapters.pop()
            self.base_layer, self.ln_tuning_layers[name] = self.ln_tuning_layers[name], self.base_layer

    def forward(self, x, *args, **kwargs):
        active = self._adapters_to_run(self.ln_tuning_layers)
        if not active:
            return self.base_layer(x, *args, **kwargs)
        if len(active) != 1:
            raise ValueError(f"Trying to run forward with {len(active)} active adapters, but LN tuning does not "
                             "allow inference with more than one adapter at a time")
        return self.ln_tuning_layers[active[0]](x, *args, **kwargs)
