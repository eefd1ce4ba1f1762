"""AdamW (Loshchilov & Hutter, 2019): Adam with the weight decay taken out of the gradient.

torch.optim.AdamW's order of operations, per parameter with a gradient:

    p = p * (1 - lr * weight_decay)                   (decoupled: not scaled by the adaptive denominator)
    m = m + (1 - beta1) * (g - m)                     (torch writes it as lerp)
    v = beta2 * v + (1 - beta2) * g^2
    vmax = max(vmax, v)                               (amsgrad only; then vmax replaces v below)
    denom = sqrt(v) / sqrt(1 - beta2^t) + eps         (eps added after the bias correction)
    p = p - lr / (1 - beta1^t) * m / denom
"""
import math

from ..creation import zeros_like
from .optimizer import Optimizer


class AdamW(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *, maximize=False):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"Invalid beta parameters: {betas}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            for p in self._params_with_grad(group):
                state = self.state[p]
                if not state:  # lazily, so a parameter that never gets a grad never gets state
                    state["step"] = 0
                    state["exp_avg"] = zeros_like(p)
                    state["exp_avg_sq"] = zeros_like(p)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = zeros_like(p)
                p_, g = p.data, p.grad.data
                g = -g if group["maximize"] else g
                m, v = state["exp_avg"].data, state["exp_avg_sq"].data
                state["step"] += 1
                t = state["step"]

                p_ *= 1 - lr * group["weight_decay"]
                m += (1 - beta1) * (g - m)
                v *= beta2
                v += (1 - beta2) * (g * g)
                if group["amsgrad"]:
                    vmax = state["max_exp_avg_sq"].data
                    p.xp.maximum(vmax, v, out=vmax)
                    v = vmax
                step_size = lr / (1 - beta1**t)
                denom = p.xp.sqrt(v) / math.sqrt(1 - beta2**t) + eps
                p_ -= step_size * (m / denom)
        return loss
