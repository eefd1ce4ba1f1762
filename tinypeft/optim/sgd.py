"""SGD with momentum, dampening, Nesterov and L2 weight decay, in torch.optim.SGD's order of operations:

    g = grad + weight_decay * p                       (L2: the decay goes through the momentum)
    buf = g on the first step, else momentum * buf + (1 - dampening) * g
    g = g + momentum * buf if nesterov else buf
    p = p - lr * g
"""
from ..tensor import Tensor
from .optimizer import Optimizer


class SGD(Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *, maximize=False):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            for p in self._params_with_grad(group):
                p_, g = p.data, p.grad.data
                g = -g if group["maximize"] else g
                if group["weight_decay"] != 0:
                    g = g + group["weight_decay"] * p_
                if momentum != 0:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = Tensor._wrap(g.copy())
                    else:
                        buf = state["momentum_buffer"].data
                        buf *= momentum
                        buf += (1 - dampening) * g
                    buf = state["momentum_buffer"].data
                    g = g + momentum * buf if group["nesterov"] else buf
                p_ -= lr * g
        return loss
