"""LSTM: torch.nn.LSTM's arguments, parameter names, init and gate order, composed from proven ops.

One step of one layer and direction (x_t [B, in], h, c [B, H]; W_ih [4H, in], W_hh [4H, H], torch's gate
order i, f, g, o):
    gates = x_t W_ih^T + b_ih + h W_hh^T + b_hh                          [B, 4H]
    i, f, o = sigmoid(gates[:, 0:H]), sigmoid(gates[:, H:2H]), sigmoid(gates[:, 3H:4H])
    g = tanh(gates[:, 2H:3H])
    c' = f * c + i * g,   h' = o * tanh(c')
The backward pass is the autograd of those ops (linear, getitem, sigmoid, tanh, mul, add, stack), each proven
by gradcheck on its own; tests/test_rnn.py gradchecks the whole LSTM as well. A reverse direction runs the
same recurrence from the last step to the first; a bidirectional layer's output concatenates both directions'
h at each step [.., 2H], the next layer's input. Dropout (training only) sits between layers, not after the last.
"""
import math

from .. import functional as F
from ..ops.shape import cat, stack
from ..tensor import Tensor
from . import init
from .module import Module, Parameter


class LSTM(Module):
    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, dtype=None):
        super().__init__()
        if proj_size:
            raise NotImplementedError(f"LSTM(proj_size={proj_size}): projections are not implemented by tinypeft; "
                                      "use proj_size=0.")
        if not 0 <= dropout <= 1:
            raise ValueError(f"dropout should be a number in range [0, 1] representing the probability of an "
                             f"element being zeroed, got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        directions = 2 if bidirectional else 1
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else hidden_size * directions
            for suffix in self._suffixes(layer):
                self.register_parameter(f"weight_ih{suffix}",
                                        Parameter(init.empty(4 * hidden_size, layer_in, dtype=dtype)))  # [4H, in]
                self.register_parameter(f"weight_hh{suffix}",
                                        Parameter(init.empty(4 * hidden_size, hidden_size, dtype=dtype)))  # [4H, H]
                for name in ("bias_ih", "bias_hh"):
                    self.register_parameter(f"{name}{suffix}", Parameter(init.empty(4 * hidden_size, dtype=dtype))
                                            if bias else None)
        self.reset_parameters()

    def _suffixes(self, layer):
        return [f"_l{layer}"] + ([f"_l{layer}_reverse"] if self.bidirectional else [])

    def reset_parameters(self):
        """torch's init: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def forward(self, input, hx=None):
        """input [T, B, in] ([B, T, in] with batch_first, or unbatched [T, in]); hx = (h_0, c_0), each
        [num_layers * directions, B, H], zeros when None. Returns output [T, B, directions * H] (batch_first:
        [B, T, ...]) and (h_n, c_n) as h_0, the last state of each layer and direction."""
        unbatched = input.ndim == 2
        if unbatched:
            input = input.unsqueeze(1)  # [T, in] -> [T, 1, in]
            hx = None if hx is None else tuple(s.unsqueeze(1) for s in hx)
        elif self.batch_first:
            input = input.transpose(0, 1)  # [B, T, in] -> [T, B, in]
        if input.shape[-1] != self.input_size:
            raise ValueError(f"LSTM: input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                             f"got {input.shape[-1]}")
        steps = [input[t] for t in range(input.shape[0])]  # T x [B, in]
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout and self.training:
                steps = [F.dropout(x, self.dropout, training=True) for x in steps]
            outs = []
            for d, suffix in enumerate(self._suffixes(layer)):
                k = layer * len(self._suffixes(layer)) + d
                state = None if hx is None else (hx[0][k], hx[1][k])
                hs, (h, c) = self._direction(steps, suffix, state, reverse=d == 1)
                outs.append(hs)
                h_n.append(h)
                c_n.append(c)
            steps = [cat([o[t] for o in outs], dim=-1) if len(outs) > 1 else outs[0][t] for t in range(len(steps))]
        output = stack(steps, dim=0)  # [T, B, D*H]
        h_n, c_n = stack(h_n, dim=0), stack(c_n, dim=0)  # [L*D, B, H]
        if unbatched:
            return output.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
        return (output.transpose(0, 1) if self.batch_first else output), (h_n, c_n)

    def _direction(self, steps, suffix, state, reverse):
        """One layer in one direction over T steps: the list of h_t (in time order) and the last (h, c)."""
        H = self.hidden_size
        w_ih, w_hh = getattr(self, f"weight_ih{suffix}"), getattr(self, f"weight_hh{suffix}")
        b_ih, b_hh = getattr(self, f"bias_ih{suffix}"), getattr(self, f"bias_hh{suffix}")
        x_proj = [F.linear(x, w_ih, b_ih) for x in steps]  # T x [B, 4H]
        if state is None:
            zeros = steps[0].xp.zeros((steps[0].shape[0], H), dtype=steps[0].dtype)
            h = c = Tensor(zeros)
        else:
            h, c = state
        hs = [None] * len(steps)
        for t in (reversed(range(len(steps))) if reverse else range(len(steps))):
            gates = x_proj[t] + F.linear(h, w_hh, b_hh)  # [B, 4H]
            i, f = F.sigmoid(gates[:, :H]), F.sigmoid(gates[:, H:2 * H])
            g, o = F.tanh(gates[:, 2 * H:3 * H]), F.sigmoid(gates[:, 3 * H:])
            c = f * c + i * g
            h = o * F.tanh(c)
            hs[t] = h
        return hs, (h, c)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s
