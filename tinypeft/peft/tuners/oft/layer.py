"""OFT layers: the input of the frozen layer (or an embedding's output) is rotated blockwise,

    x [.., in] -> x [.., r, b] -> x_i @ R_i -> [.., in],   R_i = cayley(S_i),  S_i = skew(oft_R.weight[i]) [b, b]

so Linear/Conv2d compute base(x R) and an Embedding computes emb(ids) R, R = diag(R_1, ..., R_r) orthogonal.
The trained parameter `oft_R.<adapter>.weight` [r, b(b-1)/2] holds the strict upper triangle of each S_i
(row-major, torch.triu_indices' order); block_share keeps one row for all blocks.

R_i is the exact Cayley transform (ops/cayley.py: its backward is derived there) or, with use_cayley_neumann,
PEFT's truncated series I + 2S + 2S^2 + ... + 2S^(n-2) + S^(n-1), built from matmuls (proven ops). That series
sums (I + S)(I - S)^{-1} = cayley(S)^T (the sign of S flipped), as in PEFT; both are rotations.
A Conv2d's input is cut into kernel-sized patches (unfold, stride 1, no padding), each patch vector
[C*kh*kw] rotated, and the patches put back (fold, overlaps summed) before the frozen conv runs, as PEFT does
(including PEFT's reshape between the rotation and the fold).
Merging: W <- W R^T (Linear, Conv2d viewed [out, C*kh*kw]) or W <- W R (Embedding); unmerging multiplies by
the inverse (the series is only nearly orthogonal, so PEFT inverts rather than transposes).
"""
import warnings

import numpy as np

from .... import functional as F
from .... import backend, nn
from ....autograd import no_grad
from ....ops.shape import cat
from ....tensor import Tensor
from ..tuners_utils import BaseTunerLayer


def skew_index(b):
    """Where each entry of a b x b skew matrix comes from in [0, vec, -vec]: 0 on the diagonal, 1 + k above it,
    1 + m + k below it (k: the entry's place in the upper triangle, m = b(b-1)/2)."""
    rows, cols = np.triu_indices(b, 1)
    m = len(rows)
    idx = np.zeros((b, b), dtype=np.int64)
    idx[rows, cols] = 1 + np.arange(m)
    idx[cols, rows] = 1 + m + np.arange(m)
    return idx.reshape(-1)


def skew(vec, b):
    """vec [n, b(b-1)/2] -> S [n, b, b], S = U - U^T with U's upper triangle = vec (a gather: gradient by scatter)."""
    n = vec.shape[0]
    padded = cat([Tensor(np.zeros((n, 1), dtype=vec.dtype)), vec, -vec], dim=1)  # [n, 1 + 2m]
    return padded[:, skew_index(b)].reshape(n, b, b)


def neumann_cayley(S, terms):
    """PEFT's Cayley-Neumann series (0.18+): I + 2S + 2S^2 + ... with the last power taken once."""
    eye = Tensor(np.eye(S.shape[-1], dtype=S.dtype))
    R = eye + 0 * S  # [n, b, b]
    if terms > 1:
        R = R + 2 * S
        if terms > 2:
            power = S @ S
            R = R + 2 * power
            for _ in range(3, terms - 1):
                power = power @ S
                R = R + 2 * power
            R = R + power @ S
    return R


class OFTRotationModule(nn.Module):
    """The rotation of one adapter: `weight` [r, n_elements] and how it becomes R (PEFT's OFTRotationModule)."""

    def __init__(self, r, n_elements, block_size, in_features, coft=False, eps=6e-5, block_share=False,
                 kernel_size=(0, 0), use_cayley_neumann=True, num_cayley_neumann_terms=5):
        super().__init__()
        self.r, self.n_elements, self.block_size, self.in_features = r, n_elements, block_size, in_features
        self.weight = nn.Parameter(nn.init.empty(r, n_elements))
        self.coft, self.eps, self.block_share, self.kernel_size = coft, eps, block_share, kernel_size
        self.use_cayley_neumann, self.num_cayley_neumann_terms = use_cayley_neumann, num_cayley_neumann_terms

    def _project(self):
        """COFT: each S_i pulled back onto the ball ||S_i||_F <= eps / sqrt(r), in place (no gradient), as PEFT."""
        b, vec = self.block_size, self.weight.data
        S = np.zeros((vec.shape[0], b, b), dtype=vec.dtype)
        rows, cols = np.triu_indices(b, 1)
        S[:, rows, cols] = vec
        S = S - S.swapaxes(1, 2)
        eps = np.float32(self.eps) * (1 / np.sqrt(np.float32(S.shape[0])))
        norm = np.linalg.norm(S, axis=(1, 2), keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            S = np.where(norm <= eps, S, eps * (S / norm))
        self.weight.data = np.ascontiguousarray(S[:, rows, cols].astype(vec.dtype))

    def rotations(self):
        """R_i for each stored block: [r, b, b] (a Tensor, differentiable in weight)."""
        if self.coft:
            with no_grad():
                self._project()
        S = skew(self.weight, self.block_size)
        if self.use_cayley_neumann:
            return neumann_cayley(S, self.num_cayley_neumann_terms)
        return F.cayley(S)

    @property
    def rank(self):
        return self.in_features // self.block_size if self.block_share else self.r

    def rotate(self, x):
        """x [.., in] -> [.., in], each block of b features times its R_i."""
        R = self.rotations()  # [r or 1, b, b]
        lead = x.shape[:-1]
        xb = x.reshape(*lead, self.rank, 1, self.block_size)
        return (xb @ R).reshape(*lead, self.in_features)

    def forward(self, x):
        if x.ndim != 4:
            return self.rotate(x)
        # Conv2d: patches of the kernel's size, each a vector [C*kh*kw], rotated and folded back
        B, C, H, W = x.shape
        kh, kw = self.kernel_size
        Ho, Wo = H - kh + 1, W - kw + 1
        cols = F.unfold(x, (kh, kw))                                        # [B, C*kh*kw, L]
        cols = self.rotate(cols.transpose(1, 2).reshape(B * Ho * Wo, -1))   # [B*L, C*kh*kw]
        # PEFT views the rotated rows as [B, Ho, Wo, C, kh, kw], permutes to [B, C, Ho, Wo, kh, kw] and reads
        # that memory as fold's [B, C*kh*kw, L] (the same layout when L == 1 or kh == kw == 1)
        cols = cols.reshape(B, Ho, Wo, C, kh, kw).permute(0, 3, 1, 2, 4, 5).reshape(B, C * kh * kw, Ho * Wo)
        return F.fold(cols, (H, W), (kh, kw))

    def get_weight(self):
        """The block-diagonal R [in, in] as an array (for merging)."""
        with no_grad():
            R = self.rotations().data
        b = self.block_size
        out = backend.xp_of(R).zeros((self.in_features, self.in_features), dtype=R.dtype)
        for i in range(self.rank):
            out[i * b:(i + 1) * b, i * b:(i + 1) * b] = R[0 if self.block_share else i]
        return out


def adjust_oft_parameters(in_features, params):
    """PEFT's fix for a block size or count that does not divide in_features: the nearest divisor."""
    if params >= in_features:
        return in_features
    higher = params
    while higher <= in_features and in_features % higher != 0:
        higher += 1
    lower = params
    while lower > 1 and in_features % lower != 0:
        lower -= 1
    return lower if (params - lower) <= (higher - params) else higher


class OFTLayer(nn.Module, BaseTunerLayer):
    adapter_layer_names = ("oft_R", "oft_embedding_R")
    other_param_names = ("r", "oft_block_size")

    def __init__(self, base_layer):
        super().__init__()
        self._init_tuner(base_layer)
        self.oft_R, self.oft_embedding_R = nn.ModuleDict({}), nn.ModuleDict({})
        self.r, self.oft_block_size = {}, {}
        if isinstance(base_layer, nn.Embedding):
            self.in_features, self.out_features = base_layer.embedding_dim, base_layer.num_embeddings
        elif isinstance(base_layer, nn.Conv2d):
            self.in_features, self.out_features = base_layer.in_channels, base_layer.out_channels
        else:
            self.in_features, self.out_features = base_layer.in_features, base_layer.out_features

    _container = "oft_R"
    rotated_features = property(lambda self: self.in_features)

    def update_layer(self, adapter_name, r, config):
        dim, block = self.rotated_features, config.oft_block_size
        if r == 0 and block != 0:
            if dim % block != 0 or block > dim:
                old, block = block, adjust_oft_parameters(dim, block)
                warnings.warn(f"Invalid `oft_block_size` ({old})! Adjusted `oft_block_size` to ({block}).")
            r = dim // block
        elif r != 0 and block == 0:
            if dim % r != 0 or r > dim:
                old, r = r, adjust_oft_parameters(dim, r)
                warnings.warn(f"Invalid `r` ({old})! Adjusted `r` to ({r}).")
            block = dim // r
        else:
            raise ValueError("Something went wrong, please report this error: https://github.com/huggingface/peft/issues")
        module = OFTRotationModule(1 if config.block_share else r, block * (block - 1) // 2, block, dim,
                                   coft=config.coft, eps=config.eps, block_share=config.block_share,
                                   kernel_size=self._kernel_size(), use_cayley_neumann=config.use_cayley_neumann,
                                   num_cayley_neumann_terms=config.num_cayley_neumann_terms)
        with no_grad():
            if config.init_weights is False:
                nn.init.normal_(module.weight, mean=0.0, std=0.1)
            elif config.init_weights is True:
                nn.init.zeros_(module.weight)
            else:
                raise ValueError(f"Unknown initialization init_weights={config.init_weights!r}")
        getattr(self, self._container)[adapter_name] = module
        self.r[adapter_name], self.oft_block_size[adapter_name] = r, block
        self.set_adapter(self.active_adapters)

    def _kernel_size(self):
        return (0, 0)

    def get_delta_weight(self, adapter):
        """The block-diagonal rotation R [in, in] of one adapter (an array)."""
        return getattr(self, self._container)[adapter].get_weight()

    def forward(self, x, *args, **kwargs):
        active = self._adapters_to_run(self.oft_R)
        for adapter in active:
            x = self.oft_R[adapter](x)
        return self.base_layer(x, *args, **kwargs)

    def _flat(self, W):
        return W.reshape(self.out_features, -1)

    def merge(self, safe_merge=False, adapter_names=None):
        self._merge_adapters(lambda a, W: (self._flat(W) @ self.get_delta_weight(a).T).reshape(W.shape),
                             adapter_names, safe_merge, self.oft_R)

    def unmerge(self):
        self._unmerge_adapters(
            lambda a, W: (self._flat(W) @ np.linalg.inv(self.get_delta_weight(a)).T).reshape(W.shape))


class Linear(OFTLayer):
    """OFT around nn.Linear: base(x R)."""


class Conv2d(OFTLayer):
    """OFT around nn.Conv2d: the kernel-sized patches of x rotated (vectors of C*kh*kw), then the frozen conv."""

    def __init__(self, base_layer):
        if base_layer.dilation[0] > 1:
            raise ValueError("Conv2d with dilation > 1 is not supported by OFT.")
        super().__init__(base_layer)

    rotated_features = property(lambda self: self.in_features * self.base_layer.kernel_size[0] ** 2)

    def _kernel_size(self):
        return self.base_layer.kernel_size


class Embedding(OFTLayer):
    """OFT on nn.Embedding: emb(ids) R (the embedding dimension is rotated)."""

    _container = "oft_embedding_R"

    def forward(self, x, *args, **kwargs):
        active = self._adapters_to_run(self.oft_embedding_R)
        out = self.base_layer(x, *args, **kwargs)
        for adapter in active:
            out = self.oft_embedding_R[adapter](out)
        return out

    def merge(self, safe_merge=False, adapter_names=None):
        self._merge_adapters(lambda a, W: W @ self.get_delta_weight(a), adapter_names, safe_merge,
                             self.oft_embedding_R)

    def unmerge(self):
        self._unmerge_adapters(lambda a, W: W @ np.linalg.inv(self.get_delta_weight(a)))
