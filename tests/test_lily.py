"""Lily: the routed mix of B's, sharing of A and B across layers, no merge, gradients."""
import numpy as np
import pytest

import tinypeft as tp
from adapter_checks import check_second_adapter
from custom_models import MLP, inputs
from tinypeft import functional as F
from tinypeft import nn
from tinypeft.peft import LilyConfig, get_peft_model
from tinypeft.testing import gradcheck


class Stack(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(6, 6) for _ in range(5)])

    def forward(self, x):
        for layer in self.layers:
            x = F.relu(layer(x))
        return x


def test_lily_forward_is_the_routed_mix():
    base = MLP().eval()
    with tp.no_grad():
        want = base(inputs("MLP")).numpy()
        pm = get_peft_model(base, LilyConfig(target_modules=["lin0"], r=2)).eval()
        np.testing.assert_array_equal(pm(inputs("MLP")).numpy(), want)
    pm = get_peft_model(MLP().eval(), LilyConfig(target_modules=["lin0"], r=2, num_B=3, scaling=0.5,
                                                 init_weights=False)).eval()
    layer, x = pm.base_model.model.lin0, inputs("MLP").numpy()
    A, Bw = layer.lily_A["default"].weight.detach().numpy(), layer.lily_B["default"].weight.detach().numpy()
    router = layer.lily_router["default"].weight.detach().numpy()
    h = x @ A.T
    logits = h @ router.T
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p = (p / p.sum(-1, keepdims=True)).mean(0)
    mix = np.einsum("e,eio->io", p, Bw.reshape(3, 2, 20))
    with tp.no_grad():
        got = layer(inputs("MLP")).numpy() - layer.base_layer(inputs("MLP")).numpy()
    np.testing.assert_allclose(got, 0.5 * h @ mix, rtol=1e-4, atol=1e-4)
    with pytest.raises(NotImplementedError, match="Lily"):
        pm.merge_adapter()


def test_lily_shares_a_by_stride_and_b_across_layers():
    pm = get_peft_model(Stack(), LilyConfig(target_modules=["layers.0", "layers.1", "layers.2", "layers.3",
                                                            "layers.4"], r=2, stride_A=2))
    layers = pm.base_model.model.layers
    # five different target names: five groups, nothing shared
    assert len({id(m.lily_B["default"]) for m in layers}) == 5
    pm = get_peft_model(Stack(), LilyConfig(target_modules=r".*layers\.\d", r=2, stride_A=2))
    layers = pm.base_model.model.layers
    assert len({id(m.lily_B["default"]) for m in layers}) == 1
    assert [[m.lily_A["default"] is layers[j].lily_A["default"] for j in range(5)] for m in layers][2] == [
        False, False, True, True, False]
    n_trainable, _ = pm.get_nb_trainable_parameters()
    assert n_trainable == 3 * 2 * 6 + 2 * 2 * 6 + 5 * 2 * 2  # 3 A's, one B [num_B * r, out], 5 routers


def test_lily_gradients_match_finite_differences():
    pm = get_peft_model(MLP(), LilyConfig(target_modules=["lin0"], r=2, num_B=3, init_weights=False)).double()
    layer = pm.base_model.model.lin0
    x = tp.tensor(np.random.default_rng(0).standard_normal((4, 10)))
    params = [p for _, p in layer.named_parameters() if p.requires_grad]
    assert len(params) == 3
    assert gradcheck(lambda *ps: layer(x), params)


def test_lily_refuses_bad_configs():
    with pytest.raises(ValueError, match="num_B"):
        LilyConfig(num_B=1)
    with pytest.raises(ValueError, match="stride_A"):
        LilyConfig(stride_A=0)


def test_lily_second_adapter(tmp_path):
    check_second_adapter(lambda: LilyConfig(target_modules=["lin0"], r=2, init_weights=False), tmp_path)
