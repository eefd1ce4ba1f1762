"""LoHa layers: per adapter, hada_w1_a/b and hada_w2_a/b (and, for effective convs, Tucker cores hada_t1/t2).

Linear (and a conv flattened to [out, in/groups * prod(kernel)]):

    delta = (w1_a @ w1_b) * (w2_a @ w2_b) * s          w*_a [out, r], w*_b [r, in], s = alpha / r

The backward, with G = dL/d delta, P1 = w1_a w1_b, P2 = w2_a w2_b (autograd composes it from mul and matmul):

    dw1_a = s (G * P2) w1_b^T      dw1_b = s w1_a^T (G * P2)      (and 1 <-> 2 swapped for w2_a, w2_b)

Effective conv (use_effective_conv2d): each factor is a Tucker product with a core t [r, r, *k],
w*_a [r, out], w*_b [r, in/groups]:

    P[p, c, *k] = sum_{i, j} t[i, j, *k] w_b[j, c] w_a[i, p]         delta = P1 * P2 * s

PEFT stores a Conv1d's cores as [r, r, k, 1] and so do we (the file format); the trailing 1 is dropped when
delta is reshaped to the base weight [out, in/groups, k].
"""
import math

from .... import nn
from ....autograd import no_grad
from ..lycoris_utils import LycorisLayer


def make_weight(w1a, w1b, w2a, w2b, scale):
    return (w1a @ w1b) * (w2a @ w2b) * scale  # [out, r] @ [r, in] twice -> [out, in]


def rebuild_cp(t, wa, wb):
    """P[p, c, k, l] = sum_{i, j} t[i, j, k, l] wb[j, c] wa[i, p], as two matmuls over the kernel positions."""
    y = t.permute(2, 3, 0, 1) @ wb            # [k, l, i, j] @ [j, c] -> [k, l, i, c]
    y = y.transpose(-1, -2) @ wa              # [k, l, c, i] @ [i, p] -> [k, l, c, p]
    return y.permute(3, 2, 0, 1)              # -> [p, c, k, l]


class LoHaLayer(LycorisLayer):
    adapter_layer_names = ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2")

    def __init__(self, base_layer):
        super().__init__(base_layer)
        for name in self.adapter_layer_names:
            setattr(self, name, nn.ParameterDict({}))

    def _shape(self, use_effective_conv2d):
        """The shape the factors describe: [out, in] (Linear / flattened conv) or [out, in/groups, *kernel]."""
        base = self.base_layer
        if isinstance(base, nn.Linear):
            return tuple(base.weight.shape), False
        k = base.kernel_size
        effective = use_effective_conv2d and math.prod(k) != 1
        cin = base.in_channels // base.groups
        return ((base.out_channels, cin, *k) if effective else (base.out_channels, cin * math.prod(k))), effective

    def update_layer(self, adapter_name, r, alpha, config):
        self._update_common(adapter_name, r, alpha, config)
        shape, effective = self._shape(config.use_effective_conv2d)
        P = lambda *s: nn.Parameter(nn.init.empty(*s))  # noqa: E731
        if effective:
            k = shape[2:] if len(shape) == 4 else (shape[2], 1)
            for i in ("1", "2"):
                self["hada_t" + i][adapter_name] = P(r, r, *k)
                self["hada_w" + i + "_a"][adapter_name] = P(r, shape[0])
                self["hada_w" + i + "_b"][adapter_name] = P(r, shape[1])
        else:
            for i in ("1", "2"):
                self["hada_w" + i + "_a"][adapter_name] = P(shape[0], r)
                self["hada_w" + i + "_b"][adapter_name] = P(r, shape[1])
        self.reset_adapter_parameters(adapter_name, config.init_weights)
        self.set_adapter(self.active_adapters)

    def __getitem__(self, name):
        return getattr(self, name)

    def reset_adapter_parameters(self, adapter_name, init_weights=True):
        """Kaiming-uniform (a = sqrt 5) everywhere, except hada_w2_b = 0 with init_weights=True: a no-op start."""
        with no_grad():
            for name in self.adapter_layer_names:
                if adapter_name in self[name]:
                    nn.init.kaiming_uniform_(self[name][adapter_name], a=math.sqrt(5))
            if init_weights:
                nn.init.zeros_(self.hada_w2_b[adapter_name])

    def get_delta_weight(self, adapter_name):
        s = self.scaling[adapter_name]
        w1a, w1b = self.hada_w1_a[adapter_name], self.hada_w1_b[adapter_name]
        w2a, w2b = self.hada_w2_a[adapter_name], self.hada_w2_b[adapter_name]
        if adapter_name in self.hada_t1:
            delta = rebuild_cp(self.hada_t1[adapter_name], w1a, w1b) * rebuild_cp(self.hada_t2[adapter_name], w2a, w2b) * s
        else:
            delta = make_weight(w1a, w1b, w2a, w2b, s)
        return delta.reshape(*self.base_layer.weight.shape)


class Linear(LoHaLayer):
    """LoHa around nn.Linear: hada_w*_a [out, r], hada_w*_b [r, in]."""


class Conv1d(LoHaLayer):
    """LoHa around nn.Conv1d: the kernel flattened ([out, in/groups * k]) or Tucker cores [r, r, k, 1]."""


class Conv2d(LoHaLayer):
    """LoHa around nn.Conv2d: the kernel flattened ([out, in/groups * kh * kw]) or Tucker cores [r, r, kh, kw]."""
