"""BOFT layers: per adapter `boft_R` [m, D, b, b] (free matrices, made skew) and a scale `boft_s` (one per output).

    R_ij = cayley((boft_R[i, j] - boft_R[i, j]^T) / 2)                      orthogonal [b, b]  (ops/cayley.py)
    B_i  = P_i diag(R_i1, ..., R_iD) P_i^T                                   a butterfly factor [in, in]
    M    = B_{m-1} ... B_1 B_0
    Linear:  y = s * (x M) W^T + bias            Conv2d:  y = conv(x, s * (W viewed [out, C*kh*kw]) M^T) + bias

P_i are fixed permutation matrices (PEFT's block_butterfly_perm): factor i mixes features 2^i blocks apart,
so m factors of small blocks reach every feature, as the butterfly of an FFT does. The block-diagonal matrix
is built as R [m, D, b, 1, b] * I_D [1, D, 1, D, 1] reshaped to [m, Db, Db], so everything past the Cayley
transform is mul / matmul / reshape: proven ops, gradients by autograd.
Merging: W <- s * W M^T; unmerging: W <- (W M) / s (M is orthogonal).
PEFT runs m > 1 only with its CUDA block-diagonal kernel; without one it silently uses m = 1. tinypeft always
builds the m factors, so its adapters have PEFT's shapes on a GPU (and parity tests give PEFT a CPU kernel).
"""
import math

import numpy as np

from .... import functional as F
from .... import nn
from ....autograd import no_grad
from ....creation import generator
from ....tensor import Tensor
from ..tuners_utils import BaseTunerLayer


def block_butterfly_perm(n, b, r, n_butterfly_factor):
    """PEFT's butterfly permutation of n features: within each of b groups, blocks of r taken evens first."""
    if n_butterfly_factor == 0:
        return np.arange(n)
    if b * r * 2 > n:
        raise ValueError("Invalid number of blocks!")
    group = n // b
    order = np.empty(group, dtype=np.int64)
    seq = np.concatenate([np.arange(0, group / r, 2), np.arange(1, group / r, 2)])
    for i, pos in enumerate(seq):
        order[int(i * r): int(i * r + r)] = np.arange(group)[int(pos * r): int(pos * r + r)]
    indices = np.arange(n)
    for start in range(0, n, group):
        indices[start:start + group] = indices[start:start + group][order]
    return indices


def perm2mat(indices):
    out = np.zeros((len(indices), len(indices)), dtype=np.float32)
    out[np.arange(len(indices)), indices] = 1
    return out


class BOFTLayer(nn.Module, BaseTunerLayer):
    adapter_layer_names = ("boft_R", "boft_s")
    other_param_names = ("boft_block_size", "boft_block_num", "boft_dropout", "boft_P")

    def __init__(self, base_layer):
        super().__init__()
        self._init_tuner(base_layer)
        self.boft_R, self.boft_s = nn.ParameterDict({}), nn.ParameterDict({})
        self.boft_block_size, self.boft_block_num, self.boft_dropout, self.boft_P = {}, {}, {}, {}
        if isinstance(base_layer, nn.Conv2d):
            self.in_features, self.out_features = base_layer.in_channels, base_layer.out_channels
        else:
            self.in_features, self.out_features = base_layer.in_features, base_layer.out_features

    dim = property(lambda self: self.in_features)  # the size M acts on
    what = "in_features"

    def _scale_shape(self):
        return (self.out_features, 1)

    def update_layer(self, adapter_name, config):
        size, num, m = config.boft_block_size, config.boft_block_num, config.boft_n_butterfly_factor - 1
        dim, what = self.dim, self.what
        if m < 0:
            raise ValueError(f"You can only specify boft_n_butterfly_factor {m + 1} to be a positive integer number.")
        if size == 0 and num != 0:
            if dim % num != 0:
                raise ValueError(f"{what} ({dim}) must be divisible by boft_block_num ({num})!")
            if m != 0 and (m > int(math.log2(num)) or num % (2 ** m) != 0):
                raise ValueError(f"Invalid combination of boft_n_butterfly_factor ({m + 1}) and boft_block_num ({num})!")
            size = dim // num
        elif size != 0 and num == 0:
            if dim % size != 0:
                raise ValueError(f"{what} ({dim}) must be divisible by boft_block_size ({size})!")
            if m != 0 and (dim < size * 2 ** m or dim % (size * 2 ** m) != 0):
                raise ValueError(f"Invalid combination of {what} ({dim}), boft_n_butterfly_factor ({m + 1}) and "
                                 f"boft_block_size ({size})!")
            num = dim // size
        else:
            raise ValueError("Something went wrong, please report this error: https://github.com/huggingface/peft/issues")
        if m != 0 and (num % 2 != 0 or size % 2 != 0):
            raise ValueError(f"boft_block_num ({num}) and boft_block_size ({size}) must be even numbers!")
        self.boft_P[adapter_name] = np.stack([perm2mat(block_butterfly_perm(dim, num // 2 ** i, size // 2, m))
                                              for i in range(m + 1)])  # [m+1, dim, dim], a constant
        R = nn.Parameter(np.zeros((m + 1, num, size, size), dtype=np.float32))
        s = nn.Parameter(np.ones(self._scale_shape(), dtype=np.float32))
        if config.init_weights is False:
            with no_grad():
                nn.init.normal_(R, mean=0.0, std=0.1)
                nn.init.normal_(s, mean=1.0, std=0.1)
        elif config.init_weights is not True:
            raise ValueError(f"Unknown initialization init_weights={config.init_weights!r}")
        self.boft_R[adapter_name], self.boft_s[adapter_name] = R, s
        self.boft_block_size[adapter_name], self.boft_block_num[adapter_name] = size, num
        self.boft_dropout[adapter_name] = config.boft_dropout
        self.set_adapter(self.active_adapters)

    def _block_dropout(self, R, p):
        """Training only: int(p * D) blocks of one random factor become the identity (PEFT's multiplicative dropout)."""
        if not (self.training and p > 0):
            return R
        N, D, H, _ = R.shape
        rng = generator()
        chosen = rng.integers(0, N)
        mask = np.zeros((N, D, 1, 1), dtype=R.dtype)
        mask[chosen, rng.permutation(D)[: int(p * D)]] = 1
        return R * Tensor(1 - mask) + Tensor(mask * np.eye(H, dtype=R.dtype))

    def butterfly(self, adapter):
        """M [dim, dim] (a Tensor) for one adapter."""
        R = self.boft_R[adapter]
        N, D, H, _ = R.shape
        flat = R.reshape(N * D, H, H)
        Q = F.cayley((flat - flat.transpose(1, 2)) * 0.5).reshape(N, D, H, H)
        Q = self._block_dropout(Q, self.boft_dropout[adapter])
        eye = Tensor(np.eye(D, dtype=Q.dtype).reshape(1, D, 1, D, 1))
        blocks = (Q.reshape(N, D, H, 1, H) * eye).reshape(N, D * H, D * H)  # block-diagonal, [N, dim, dim]
        P = Tensor(self.boft_P[adapter].astype(Q.dtype))
        factors = P @ blocks @ P.transpose(1, 2)                                 # P_i BD_i P_i^T
        M = factors[0]
        for i in range(1, N):
            M = factors[i] @ M
        return M

    def _rotation_and_scale(self, adapters):
        M, s = None, None
        for adapter in adapters:
            Mi, si = self.butterfly(adapter), self._scale(adapter)
            M = Mi if M is None else Mi @ M
            s = si if s is None else si * s
        return M, s

    def _scale(self, adapter):
        return self.boft_s[adapter]  # [out, 1]

    def get_delta_weight(self, adapter):
        """(M [dim, dim], s [out, 1]) as arrays."""
        with no_grad():
            return self.butterfly(adapter).data, self._scale(adapter).data

    def merge(self, safe_merge=False, adapter_names=None):
        def merged(a, W):
            M, s = self.get_delta_weight(a)
            return ((W.reshape(self.out_features, -1) @ M.T) * s).reshape(W.shape)

        self._merge_adapters(merged, adapter_names, safe_merge, self.boft_R)

    def unmerge(self):
        def unmerged(a, W):
            M, s = self.get_delta_weight(a)
            return ((W.reshape(self.out_features, -1) @ M) * (1 / s)).reshape(W.shape)

        self._unmerge_adapters(unmerged)


class Linear(BOFTLayer):
    """BOFT around nn.Linear: y = s * (x M) W^T + bias."""

    def forward(self, x, *args, **kwargs):
        active = self._adapters_to_run(self.boft_R)
        if not active:
            return self.base_layer(x, *args, **kwargs)
        M, s = self._rotation_and_scale(active)
        y = F.linear(x @ M, self.base_layer.weight) * s.reshape(-1)
        return y if self.base_layer.bias is None else y + self.base_layer.bias


class Conv2d(BOFTLayer):
    """BOFT around nn.Conv2d: the kernel viewed [out, C*kh*kw] is rotated and scaled, then convolved."""

    what = "Convolutional kernel dimension"

    def __init__(self, base_layer):
        if base_layer.groups > 1:
            raise NotImplementedError(f"BOFT on a Conv2d with groups={base_layer.groups} is not supported "
                                      "(PEFT's BOFT views the kernel as [out, in * k * k]).")
        super().__init__(base_layer)

    dim = property(lambda self: self.in_features * self.base_layer.kernel_size[0] ** 2)

    def _scale_shape(self):
        return (1, self.out_features)  # PEFT stores the conv scale as a row

    def _scale(self, adapter):
        return self.boft_s[adapter].transpose(0, 1)  # [out, 1]

    def forward(self, x, *args, **kwargs):
        active = self._adapters_to_run(self.boft_R)
        if not active:
            return self.base_layer(x, *args, **kwargs)
        M, s = self._rotation_and_scale(active)
        W = self.base_layer.weight
        W2 = (W.reshape(self.out_features, -1) @ M.transpose(0, 1)) * s        # [out, C*kh*kw]
        return F.conv2d(x, W2.reshape(*W.shape), self.base_layer.bias, stride=self.base_layer.stride[0],
                        padding=self.base_layer.padding[0])
