"""Solutions to tutorials/01_autograd.md's exercises (and the mistakes their checks must catch).

    python tutorials/solutions/01_autograd.py
"""
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tinypeft.course.checks_01 import check_topological_order, check_unbroadcast, check_value_exp  # noqa: E402


class Value:
    """The tutorial's scalar autograd, with the exercises folded in (exp, and a backward without recursion)."""

    def __init__(self, data, _prev=(), _op="", label=""):
        self.data, self.grad, self._prev, self._op, self.label = data, 0.0, _prev, _op, label
        self._backward = lambda: None

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    __radd__, __rmul__ = __add__, __mul__

    def backward(self):
        self.grad = 1.0
        for v in reversed(topological_order(self)):
            v._backward()


# ---- Exercise 1 ----
def value_exp(v):
    e = math.exp(v.data)
    out = Value(e, (v,), "exp")

    def _backward():  # d e^a / da = e^a
        v.grad += e * out.grad

    out._backward = _backward
    return out


# ---- Exercise 2 ----
def topological_order(root):
    """Post-order DFS with an explicit stack: (node, children_done) pairs."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        v, children_done = stack.pop()
        if children_done:
            order.append(v)  # all of v's inputs are already in `order`
        elif v not in seen:
            seen.add(v)
            stack.append((v, True))
            stack.extend((c, False) for c in v._prev if c not in seen)
    return order


# ---- Exercise 3 ----
def unbroadcast(grad, shape):
    shape = tuple(shape)
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))  # the added leading dims
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=stretched, keepdims=True).reshape(shape)  # the stretched size-1 dims


EXERCISES = {
    "check_value_exp": (value_exp, Value),
    "check_topological_order": (topological_order, Value),
    "check_unbroadcast": (unbroadcast,),
}


# ---- mistakes the checks must catch ----
def _exp_assigning_grad(v):  # `=` instead of `+=`: a value used twice loses one contribution
    e = math.exp(v.data)
    out = Value(e, (v,), "exp")

    def _backward():
        v.grad = e * out.grad

    out._backward = _backward
    return out


def _preorder(root):  # the root first: consumers before producers, the reverse of what is needed
    order, seen, stack = [], set(), [root]
    while stack:
        v = stack.pop()
        if v not in seen:
            seen.add(v)
            order.append(v)
            stack.extend(v._prev)
    return order


def _unbroadcast_leading_only(grad, shape):  # forgets the stretched size-1 dims
    return grad.sum(axis=tuple(range(grad.ndim - len(shape))))


MISTAKES = {
    "check_value_exp": (_exp_assigning_grad, Value),
    "check_topological_order": (_preorder, Value),
    "check_unbroadcast": (_unbroadcast_leading_only,),
}


# ---- holes the checks once let through: each must now fail (tests/test_tutorials.py) ----
def _exp_without_parents(v):  # the closure reaches v, but backward() cannot order what _prev does not name
    e = math.exp(v.data)
    out = Value(e)

    def _backward():
        v.grad += e * out.grad

    out._backward = _backward
    return out


HOLES = {"check_value_exp": [(_exp_without_parents, Value)]}

if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
    np.testing.assert_equal(unbroadcast(np.ones((2, 3)), (3,)), [2.0, 2.0, 2.0])
