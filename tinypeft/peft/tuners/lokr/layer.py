"""LoKr layers: per adapter a Kronecker product of two factors, each whole or low-rank.

    delta = kron(w1, w2) * s,    w1 = lokr_w1 [a, c]  or lokr_w1_a @ lokr_w1_b,
                                 w2 = lokr_w2 [b, d(, *k)]  or lokr_w2_a @ lokr_w2_b  or Tucker(lokr_t2, w2_a, w2_b)

out = a*b, in = c*d (see factorization). kron is written with broadcasting, which autograd differentiates
through mul and reshape (ops already proven):

    kron(A, B)[i0*B0 + j0, i1*B1 + j1, ...] = A[i0, i1, ...] B[j0, j1, ...]
      = (A reshaped [A0, 1, A1, 1, ..] * B reshaped [1, B0, 1, B1, ..]) reshaped [A0*B0, A1*B1, ..]
    dA[i] = sum_j G[i*, j*] B[j]          dB[j] = sum_i G[i*, j*] A[i]      (G = dL/d kron, blocked the same way)

Like torch.kron, a factor with fewer dims gets leading 1s; with a 4-D w2 (a conv kernel) w1 gets trailing
1s first, as PEFT does, so the kernel axes come from w2 alone.
"""
import math

from .... import nn
from ....autograd import no_grad
from ..loha.layer import rebuild_cp
from ..lycoris_utils import LycorisLayer


def factorization(dimension, factor=-1):
    """dimension = m * n with m <= n: m = factor if it divides, else the divisor pair closest to the square root
    (with m at most factor when factor > 0)."""
    if factor > 0 and dimension % factor == 0:
        return factor, dimension // factor
    if factor == -1:
        factor = dimension
    m, n = 1, dimension
    while m < n:
        new_m = m + 1
        while dimension % new_m:
            new_m += 1
        new_n = dimension // new_m
        if new_m + new_n > m + n or new_m > factor:
            break
        m, n = new_m, new_n
    return (n, m) if m > n else (m, n)


def kron(a, b):
    """torch.kron for Tensors, through broadcasting (see the module docstring)."""
    n = max(a.ndim, b.ndim)
    a = a.reshape(*(1,) * (n - a.ndim), *a.shape)
    b = b.reshape(*(1,) * (n - b.ndim), *b.shape)
    inter = lambda s, first: [v for d in s for v in ((d, 1) if first else (1, d))]  # noqa: E731
    y = a.reshape(*inter(a.shape, True)) * b.reshape(*inter(b.shape, False))  # [A0, B0, A1, B1, ...]
    return y.reshape(*(x * z for x, z in zip(a.shape, b.shape)))


class LoKrLayer(LycorisLayer):
    adapter_layer_names = ("lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2")

    def __init__(self, base_layer):
        super().__init__(base_layer)
        for name in self.adapter_layer_names:
            setattr(self, name, nn.ParameterDict({}))

    def update_layer(self, adapter_name, r, alpha, config):
        self._update_common(adapter_name, r, alpha, config)
        self.rank_dropout_scale[adapter_name] = config.rank_dropout_scale
        base, f = self.base_layer, config.decompose_factor
        k = () if isinstance(base, nn.Linear) else tuple(base.kernel_size)
        cin = base.in_features if isinstance(base, nn.Linear) else base.in_channels // base.groups
        (a, b), (c, d) = factorization(self.out_features, f), factorization(cin, f)
        use_w1 = not (config.decompose_both and r < max(a, c) / 2)
        use_w2 = r >= max(b, d) / 2
        effective = bool(k) and config.use_effective_conv2d and math.prod(k) != 1
        P = lambda *s: nn.Parameter(nn.init.empty(*s))  # noqa: E731
        if use_w1:
            self.lokr_w1[adapter_name] = P(a, c)
        else:
            self.lokr_w1_a[adapter_name], self.lokr_w1_b[adapter_name] = P(a, r), P(r, c)
        if use_w2:
            self.lokr_w2[adapter_name] = P(b, d, *k)
        elif effective:  # a Conv1d's core is [r, r, k, 1], as PEFT stores it
            self.lokr_t2[adapter_name] = P(r, r, *(k if len(k) == 2 else (k[0], 1)))
            self.lokr_w2_a[adapter_name], self.lokr_w2_b[adapter_name] = P(r, b), P(r, d)
        else:
            self.lokr_w2_a[adapter_name], self.lokr_w2_b[adapter_name] = P(b, r), P(r, d * math.prod(k))
        self.reset_adapter_parameters(adapter_name, config.init_weights)
        self.set_adapter(self.active_adapters)

    def reset_adapter_parameters(self, adapter_name, init_weights=True):
        """Kaiming-uniform (a = sqrt 5) everywhere; then True zeroes w1 (or w1_a), "lycoris" zeroes w2 (or w2_b)."""
        with no_grad():
            for name in self.adapter_layer_names:
                if adapter_name in getattr(self, name):
                    nn.init.kaiming_uniform_(getattr(self, name)[adapter_name], a=math.sqrt(5))
            if init_weights is True:
                nn.init.zeros_((self.lokr_w1 if adapter_name in self.lokr_w1 else self.lokr_w1_a)[adapter_name])
            elif init_weights == "lycoris":
                nn.init.zeros_((self.lokr_w2 if adapter_name in self.lokr_w2 else self.lokr_w2_b)[adapter_name])

    def get_delta_weight(self, adapter_name):
        if adapter_name in self.lokr_w1:
            w1 = self.lokr_w1[adapter_name]
        else:
            w1 = self.lokr_w1_a[adapter_name] @ self.lokr_w1_b[adapter_name]
        if adapter_name in self.lokr_w2:
            w2 = self.lokr_w2[adapter_name]
        elif adapter_name in self.lokr_t2:
            w2 = rebuild_cp(self.lokr_t2[adapter_name], self.lokr_w2_a[adapter_name], self.lokr_w2_b[adapter_name])
        else:
            w2 = self.lokr_w2_a[adapter_name] @ self.lokr_w2_b[adapter_name]
        if w2.ndim == 4:
            w1 = w1.reshape(*w1.shape, 1, 1)
        return (kron(w1, w2) * self.scaling[adapter_name]).reshape(*self.base_layer.weight.shape)


class Linear(LoKrLayer):
    """LoKr around nn.Linear."""


class Conv1d(LoKrLayer):
    """LoKr around nn.Conv1d."""


class Conv2d(LoKrLayer):
    """LoKr around nn.Conv2d."""
