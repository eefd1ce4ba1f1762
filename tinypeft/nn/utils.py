"""Gradient clipping, as torch.nn.utils."""
import numpy as np

from ..tensor import Tensor


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all grads together so that the norm of their concatenation is at most max_norm.

    Returns that total norm (before clipping) as a 0-d Tensor. Like torch, the norm is taken of the
    per-parameter norms (the same number as the norm of everything concatenated), and grads are scaled by
    min(1, max_norm / (total + 1e-6)): the 1e-6 keeps a zero norm from dividing by zero."""
    grads = _grads(parameters)
    norm_type = float(norm_type)
    if not grads:
        return Tensor(np.zeros((), dtype=np.float32))
    xp = grads[0].xp
    if norm_type == float("inf"):
        norms = [xp.abs(g.data).max() for g in grads]
        total = xp.max(xp.stack(norms))
    else:
        norms = [(xp.abs(g.data.astype(np.float64)) ** norm_type).sum() ** (1.0 / norm_type) for g in grads]
        total = (xp.stack(norms) ** norm_type).sum() ** (1.0 / norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it cannot be "
            "clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`"
        )
    coef = min(float(max_norm) / (float(total) + 1e-6), 1.0)
    for g in grads:
        g.data *= g.dtype.type(coef)
    return Tensor(xp.asarray(total, dtype=grads[0].dtype))


def clip_grad_value_(parameters, clip_value):
    """Clamp every grad element to [-clip_value, clip_value] in place."""
    for g in _grads(parameters):
        g.data[...] = g.xp.clip(g.data, -clip_value, clip_value)


def skip_init(module_cls, *args, **kwargs):
    """Build a module with uninitialised (np.empty) parameters: no random draws, for weights loaded next."""
    from .init import init_empty_weights

    with init_empty_weights():
        module = module_cls(*args, **kwargs)
    return module.to_empty()
