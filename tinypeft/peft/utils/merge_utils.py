"""Ways to merge several task tensors (one per adapter) into one, as PEFT's utils/merge_utils.py names them.

Every function takes `task_tensors`, a list of equally shaped arrays, and `weights`, one number per tensor, and
returns one array:
    task_arithmetic:  sum_i w_i T_i
    magnitude_prune:  sum_i w_i prune_k(T_i)          keep the k = int(density * numel) largest |entries| of each
    ties:             disjoint_merge(w_i prune_k(T_i))  TIES-merging (Yadav et al. 2023): prune, elect a sign per
                                                      entry, average the entries that agree with it
    dare_linear:      sum_i w_i (M_i * T_i) / density  DARE (Yu et al. 2023): drop entries at random, M_i ~
                                                      Bernoulli(density), and rescale so the expectation is kept
    dare_ties:        disjoint_merge(w_i (M_i * T_i) / density)
DARE's masks come from tinypeft's generator (tinypeft.manual_seed makes them reproducible); PEFT draws them
from torch's, so the same seed gives different masks in the two libraries, and the results agree only when
the masks are the same (tests/test_weighted_adapter_parity.py hands both the same masks).
"""
import warnings

import numpy as np

from ...creation import generator

__all__ = ["reshape_weight_task_tensors", "magnitude_based_pruning", "random_pruning", "prune",
           "calculate_majority_sign_mask", "disjoint_merge", "task_arithmetic", "magnitude_prune", "ties",
           "dare_linear", "dare_ties"]


def reshape_weight_task_tensors(task_tensors, weights):
    """weights [n] -> [n, 1, ..., 1], to broadcast against the stacked task tensors [n, *shape]."""
    weights = np.asarray(weights, dtype=task_tensors.dtype)
    return weights.reshape(weights.shape + (1,) * (task_tensors.ndim - weights.ndim))


def magnitude_based_pruning(tensor, density):
    """Zero all but the k = int(density * numel) entries of largest magnitude."""
    k = int(density * tensor.size)
    order = np.argsort(-np.abs(tensor).reshape(-1), kind="stable")  # largest |x| first
    mask = np.zeros(tensor.size, dtype=tensor.dtype)
    mask[order[:k]] = 1
    return tensor * mask.reshape(tensor.shape)


def random_pruning(tensor, density, rescale):
    """Keep each entry with probability `density` (a Bernoulli mask from tinypeft's generator); with rescale,
    divide the survivors by density so that E[result] = tensor."""
    mask = (generator().random(tensor.shape) < density).astype(tensor.dtype)
    pruned = tensor * mask
    return pruned / np.asarray(density, tensor.dtype) if rescale else pruned


def prune(tensor, density, method, rescale=False):
    """Prune `tensor` to the fraction `density` by "magnitude" or "random"; density >= 1 keeps it all."""
    if density is None:
        raise ValueError("density must be given (a fraction in [0, 1]) to prune task tensors.")
    if density >= 1:
        warnings.warn(f"The density {density} is greater than or equal to 1, no pruning will be performed.")
        return tensor
    if density < 0:
        raise ValueError(f"Density should be >= 0, got {density}")
    if method == "magnitude":
        return magnitude_based_pruning(tensor, density)
    if method == "random":
        return random_pruning(tensor, density, rescale=rescale)
    raise ValueError(f"Unknown method {method}")


def calculate_majority_sign_mask(tensor, method="total"):
    """Which entries of the stacked tensors [n, *shape] carry the elected sign. "total" elects the sign of
    sum_i T_i, "frequency" the sign that most T_i have; a tie (or a zero sum) elects +."""
    sign = np.sign(tensor)
    if method == "total":
        sign_magnitude = tensor.sum(axis=0)
    elif method == "frequency":
        sign_magnitude = sign.sum(axis=0)
    else:
        raise RuntimeError(f'Unimplemented mask method "{method}"')
    majority_sign = np.where(sign_magnitude >= 0, 1, -1)
    return sign == majority_sign  # a pruned (zero) entry never agrees


def disjoint_merge(task_tensors, majority_sign_mask):
    """The mean of the entries that agree with the elected sign (0 where none does)."""
    mixed = (task_tensors * majority_sign_mask).sum(axis=0)
    preserved = majority_sign_mask.sum(axis=0).astype(task_tensors.dtype)
    return mixed / np.maximum(preserved, 1)


def _weighted_sum(task_tensors, weights):
    stacked = np.stack(task_tensors, axis=0)  # [n, *shape]
    return (stacked * reshape_weight_task_tensors(stacked, weights)).sum(axis=0)


def _elected_merge(task_tensors, weights, majority_sign_method):
    stacked = np.stack(task_tensors, axis=0)  # [n, *shape]
    mask = calculate_majority_sign_mask(stacked, method=majority_sign_method)  # the sign is elected unweighted
    return disjoint_merge(stacked * reshape_weight_task_tensors(stacked, weights), mask)


def task_arithmetic(task_tensors, weights):
    return _weighted_sum(task_tensors, weights)


def magnitude_prune(task_tensors, weights, density):
    return _weighted_sum([prune(t, density, method="magnitude") for t in task_tensors], weights)


def ties(task_tensors, weights, density, majority_sign_method="total"):
    return _elected_merge([prune(t, density, method="magnitude") for t in task_tensors], weights,
                          majority_sign_method)


def dare_linear(task_tensors, weights, density):
    return _weighted_sum([prune(t, density, method="random", rescale=True) for t in task_tensors], weights)


def dare_ties(task_tensors, weights, density, majority_sign_method="total"):
    return _elected_merge([prune(t, density, method="random", rescale=True) for t in task_tensors], weights,
                          majority_sign_method)
