"""What the LyCORIS-style methods (LoHa, LoKr) share, as in PEFT's lycoris_utils: the adapter is a weight update
delta(W) built from small factors, added to the frozen layer's output as one more linear map or convolution:

    Linear:  y = base(x) + x @ delta^T            Conv1d/Conv2d:  y = base(x) + conv(x, delta, same stride/...)

delta is built from the factors with ops whose backward is already proven (matmul, mul, reshape), so autograd
gives its gradients; merging adds delta to the base weight. LycorisConfig carries rank_pattern/alpha_pattern.
Training-only noise as PEFT: module_dropout skips the whole adapter with probability p per forward, and
rank_dropout zeroes output rows of delta (rescaled to keep the mean).
"""
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np

from ... import nn
from ...creation import generator
from ...tensor import Tensor
from ..config import TargetModulesConfig
from .tuners_utils import BaseTuner, BaseTunerLayer, get_pattern_key


@dataclass
class LycorisConfig(TargetModulesConfig):
    """The fields LoHa and LoKr share (PEFT repeats them in each config; the defaults are the same)."""

    rank_pattern: Optional[dict] = field(default_factory=dict)
    alpha_pattern: Optional[dict] = field(default_factory=dict)
    r: int = 8
    alpha: int = 8
    rank_dropout: float = 0.0
    module_dropout: float = 0.0
    use_effective_conv2d: bool = False
    exclude_modules: Optional[Union[list, str]] = None
    init_weights: bool = True

    def __post_init__(self):
        super().__post_init__()
        for name in ("rank_dropout", "module_dropout"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{type(self).__name__}({name}={getattr(self, name)!r}) must be in [0, 1].")


class LycorisLayer(nn.Module, BaseTunerLayer):
    other_param_names = ("r", "alpha", "scaling", "rank_dropout", "rank_dropout_scale", "module_dropout")

    def __init__(self, base_layer):
        super().__init__()
        self._init_tuner(base_layer)
        self.r, self.alpha, self.scaling, self.rank_dropout, self.module_dropout = {}, {}, {}, {}, {}
        self.rank_dropout_scale = {}  # rescale kept rows by 1/mean (LoHa always; LoKr when configured)
        if isinstance(base_layer, nn.Linear):
            self.in_features, self.out_features = base_layer.in_features, base_layer.out_features
        elif isinstance(base_layer, (nn.Conv1d, nn.Conv2d)):
            self.in_features, self.out_features = base_layer.in_channels, base_layer.out_channels
        else:
            raise TypeError(f"Target module of type {type(base_layer).__name__} not supported, currently only "
                            "adapters for Linear, Conv1d and Conv2d are supported")

    @property
    def _available_adapters(self):
        return {a for name in self.adapter_layer_names for a in getattr(self, name)}

    def _update_common(self, adapter_name, r, alpha, config):
        """What update_layer records for every LyCORIS method: rank, alpha, scale alpha / r, the dropouts."""
        if r <= 0:
            raise ValueError(f"`r` should be a positive integer value but the value passed is {r}")
        self.r[adapter_name], self.alpha[adapter_name] = r, alpha
        self.scaling[adapter_name] = alpha / r
        self.rank_dropout[adapter_name] = config.rank_dropout
        self.module_dropout[adapter_name] = config.module_dropout

    def get_delta_weight(self, adapter_name):
        """delta as a Tensor shaped like the base weight (autograd reaches the factors through it)."""
        raise NotImplementedError

    def _delta_for_forward(self, adapter):
        delta = self.get_delta_weight(adapter)
        p = self.rank_dropout[adapter]
        if self.training and p:  # drop whole output rows of delta (then rescale by 1/mean(kept))
            keep = (generator().random(delta.shape[0]) > p).astype(np.float32)
            if self.rank_dropout_scale.get(adapter, True):
                keep = keep / max(keep.mean(), 1e-12)
            delta = delta * Tensor(keep.reshape((-1,) + (1,) * (delta.ndim - 1)))
        return delta

    def _get_delta_activations(self, adapter, x):
        delta = self._delta_for_forward(adapter)
        base = self.base_layer
        if isinstance(base, nn.Linear):
            return x @ delta.T                                     # [.., in] @ [in, out]
        return base._conv_forward(x, delta, None)                  # the base layer's stride, padding, ...

    def forward(self, x, *args, **kwargs):
        adapters = self._adapters_to_run(self._available_adapters)
        result = self.base_layer(x, *args, **kwargs)
        for adapter in adapters:
            if self.training and generator().random() < self.module_dropout[adapter]:
                continue  # module dropout: this adapter sits out this step
            result = result + self._get_delta_activations(adapter, x)
        return result

    def merge(self, safe_merge=False, adapter_names=None):
        self._merge_adapters(lambda a, W: W + self.get_delta_weight(a).data, adapter_names, safe_merge,
                             self._available_adapters)

    def unmerge(self):
        self._unmerge_adapters(lambda a, W: W - self.get_delta_weight(a).data)


class LycorisTuner(BaseTuner):
    layers_mapping = {}  # base layer class -> adapter layer class, most specific first

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        r = config.rank_pattern.get(get_pattern_key(list(config.rank_pattern), current_key), config.r)
        alpha = config.alpha_pattern.get(get_pattern_key(list(config.alpha_pattern), current_key), config.alpha)
        if isinstance(target, self.layer_class):
            target.update_layer(adapter_name, r, alpha, config)
            return
        for base_cls, layer_cls in self.layers_mapping.items():
            if type(target) is base_cls:
                break
        else:
            raise TypeError(f"Target module of type {type(target).__name__} not supported, currently only adapters "
                            f"for {', '.join(c.__name__ for c in self.layers_mapping)} are supported")
        new = layer_cls(target)
        new.update_layer(adapter_name, r, alpha, config)
        new.set_adapter(self.active_adapters)
        setattr(parent, target_name, new)
