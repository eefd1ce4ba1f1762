"""RoAd layers: per adapter road_theta and road_alpha, applied to the frozen layer's output y [.., out]:

    y' = y * c1 + rot(y) * c2,   rot(y) = (-y_second_half, y_first_half) within each group of g outputs
    road_1: c1 = a cos t, c2 = a sin t with one (t, a) per pair (repeated to both outputs of the pair)
    road_2: the same per output;  road_4: c1 = a1 cos t1, c2 = a2 sin t2

Elementwise products, sin/cos and index shuffles: proven ops, gradients by autograd. The rotation is the matrix
R = diag(c1) + (the c2 terms off the diagonal), so merging is W <- R W, b <- R b, and unmerging multiplies by R^-1.
"""
import numpy as np

from .... import nn
from ....autograd import no_grad
from ....creation import generator
from ....ops.shape import stack
from ..tuners_utils import AdapterLayer

SIZES = {"road_1": 0.5, "road_2": 1, "road_4": 2}  # parameters per output


class RoadLayer(AdapterLayer):
    adapter_layer_names = ("road_theta", "road_alpha")
    other_param_names = ("variant", "group_size")

    def __init__(self, base_layer):
        super().__init__(base_layer, unsupported=ValueError)
        self.variant, self.group_size = {}, {}
        self.road_theta, self.road_alpha = nn.ParameterDict({}), nn.ParameterDict({})

    def update_layer(self, adapter_name, config):
        g = config.group_size
        if self.out_features % g != 0:
            raise ValueError(f"The out_features of the base layer must be divisible by group_size ({g}) when using "
                             "RoadLayer.")
        self.variant[adapter_name], self.group_size[adapter_name] = config.variant, g
        size = int(self.out_features * SIZES[config.variant])
        theta, alpha = np.zeros(size, np.float32), np.ones(size, np.float32)
        if config.init_weights is False:
            rng = generator()
            theta = rng.normal(0.0, 0.5, size).astype(np.float32)
            alpha = rng.normal(1.0, 0.5, size).astype(np.float32)
        self.road_theta[adapter_name], self.road_alpha[adapter_name] = nn.Parameter(theta), nn.Parameter(alpha)
        self.set_adapter(self.active_adapters)

    def _cols(self, adapter):
        """(c1, c2) [out] as Tensors."""
        t, a, g = self.road_theta[adapter], self.road_alpha[adapter], self.group_size[adapter]
        variant = self.variant[adapter]
        if variant == "road_1":  # each group's g/2 values, used by the first and the second half alike
            idx = np.arange(self.out_features // 2).reshape(-1, g // 2).repeat(2, axis=0).reshape(-1)
            t, a = t[idx], a[idx]
        if variant == "road_4":
            t, a = t.reshape(-1, 2, g), a.reshape(-1, 2, g)
            t1, t2, a1, a2 = (v[:, k, :].reshape(-1) for v, k in ((t, 0), (t, 1), (a, 0), (a, 1)))
            return a1 * t1.cos(), a2 * t2.sin()
        return a * t.cos(), a * t.sin()

    def _rotate(self, y, adapter):
        c1, c2 = self._cols(adapter)
        g = self.group_size[adapter]
        groups = y.reshape(-1, 2, g // 2)
        rotated = stack([-groups[:, 1, :], groups[:, 0, :]], dim=1).reshape(*y.shape)  # (-y2, y1) per group
        return y * c1 + rotated * c2

    def get_delta_weight(self, adapter):
        """R [out, out] (an array): the rotation merged into W and b."""
        with no_grad():
            c1, c2 = (c.data for c in self._cols(adapter))
        g, n = self.group_size[adapter], self.out_features
        R = np.diag(c1)
        first = (np.arange(n) % g) < g // 2
        i = np.arange(n)
        R[i[first], i[first] + g // 2] = -c2[first]     # y_i'       gets -sin * y_{i + g/2}
        R[i[~first], i[~first] - g // 2] = c2[~first]   # y_{i+g/2}' gets +sin * y_i
        return R

    def forward(self, x, *args, **kwargs):
        active = self._adapters_to_run(self.road_theta)
        result = self.base_layer(x, *args, **kwargs)
        for adapter in active:
            result = self._rotate(result, adapter)
        return result

    def merge(self, safe_merge=False, adapter_names=None):
        for adapter in adapter_names or self.active_adapters:
            if adapter in self.merged_adapters or adapter not in self.road_theta:
                continue
            R = self.get_delta_weight(adapter)
            W, b = R @ self.base_layer.weight.data, None
            if self.base_layer.bias is not None:
                b = R @ self.base_layer.bias.data
            if safe_merge and not (np.isfinite(W).all() and (b is None or np.isfinite(b).all())):
                raise ValueError(f"NaNs detected in the merged weights. The adapter {adapter} seems to be broken")
            self.base_layer.weight.data = W.astype(np.float32)
            if b is not None:
                self.base_layer.bias.data = b.astype(np.float32)
            self.merged_adapters.append(adapter)

    def unmerge(self):
        while self.merged_adapters:
            R_inv = np.linalg.inv(self.get_delta_weight(self.merged_adapters.pop()))
            self.base_layer.weight.data = (R_inv @ self.base_layer.weight.data).astype(np.float32)
            if self.base_layer.bias is not None:
                self.base_layer.bias.data = (R_inv @ self.base_layer.bias.data).astype(np.float32)


class Linear(RoadLayer):
    """RoAd around nn.Linear."""
