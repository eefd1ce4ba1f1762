"""SHiRA's masks: which entries of a weight [out, in] the adapter trains. A mask function takes
(base_layer, r, **kwargs) and returns an [out, in] 0/1 array with r (in + out) ones (config.mask_fn)."""
import numpy as np

from ..fourierft.layer import torch_randperm
from ..tuners_utils import linear_in_out

TORCH_DEFAULT_SEED = 67280421310721  # the seed of a fresh torch.Generator(), which PEFT uses when random_seed is None


def random_mask(base_layer, r, random_seed=None, **kwargs):
    """PEFT's random mask, drawn bit for bit: the first r (in + out) entries of torch.randperm(out * in) under
    random_seed (or a fresh generator's seed)."""
    in_features, out_features = linear_in_out(base_layer)
    n = r * (in_features + out_features)
    idx = torch_randperm(out_features * in_features, TORCH_DEFAULT_SEED if random_seed is None else random_seed)[:n]
    mask = np.zeros(out_features * in_features, np.float32)
    mask[idx] = 1.0
    return mask.reshape(out_features, in_features)
