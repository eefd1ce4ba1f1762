"""Activation functions as modules (torch.nn.ReLU, torch.nn.Tanh), for use inside a Sequential.

Each holds no parameters; its forward calls the op, whose derivative sits with it in tinypeft/ops/elementwise.py.
"""
from .module import Module


class ReLU(Module):
    """max(x, 0), elementwise."""

    def forward(self, input):
        return input.relu()


class Tanh(Module):
    """tanh(x), elementwise."""

    def forward(self, input):
        return input.tanh()


__all__ = ["ReLU", "Tanh"]
