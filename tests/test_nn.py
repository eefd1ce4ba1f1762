"""tinypeft.nn: module registration and walking, state_dict, modes, layers against NumPy formulas, init."""
import copy
import math
import tracemalloc

import numpy as np
import pytest

import tinypeft
from tinypeft import backend, nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.ln = nn.LayerNorm(3)
        self.drop = nn.Dropout(0.5)
        self.register_buffer("scale", tinypeft.tensor(np.full(3, 2.0, dtype=np.float32)))
        self.register_buffer("cache", tinypeft.zeros(3), persistent=False)

    def forward(self, x):
        return self.drop(self.ln(self.fc(x))) * self.scale


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(10, 4)
        self.blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(2)])
        self.lm_head = nn.Linear(4, 10, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as GPT-2's

    def forward(self, ids):
        x = self.wte(ids)
        for b in self.blocks:
            x = b(x)
        return self.lm_head(x)


# -- registration and walking ---------------------------------------------------------------------------------
def test_setattr_registers_parameters_buffers_and_modules():
    m = Block()
    assert list(m._parameters) == [] and list(m._modules) == ["fc", "ln", "drop"]
    assert [k for k, _ in m.named_parameters()] == ["fc.weight", "fc.bias", "ln.weight", "ln.bias"]
    assert [k for k, _ in m.named_buffers()] == ["scale", "cache"]
    assert [k for k, _ in m.named_modules()] == ["", "fc", "ln", "drop"]
    assert [k for k, _ in m.named_children()] == ["fc", "ln", "drop"]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in m.parameters())
    assert len(list(m.parameters(recurse=False))) == 0


def test_assigning_wrong_types_to_registered_names():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="parameter 'weight'"):
        m.weight = tinypeft.zeros(2, 2)
    m.bias = None  # allowed, like torch
    assert m.bias is None and [k for k, _ in m.named_parameters()] == ["weight"]
    with pytest.raises(TypeError, match="buffer"):
        b = Block()
        b.scale = np.zeros(3)
    del m.weight
    assert "weight" not in dict(m.named_parameters())


def test_setattr_before_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Broken()


def test_tied_weights_are_counted_once():
    m = Tied()
    names = [k for k, _ in m.named_parameters()]
    assert "wte.weight" in names and "lm_head.weight" not in names
    assert sum(p.numel() for p in m.parameters()) == 10 * 4 + 2 * (16 + 4)
    all_names = [k for k, _ in m.named_parameters(remove_duplicate=False)]
    assert "lm_head.weight" in all_names
    assert set(m.state_dict()) == set(all_names)  # state_dict keeps every name, as torch


def test_get_submodule_apply_and_children():
    m = Tied()
    assert m.get_submodule("blocks.1") is m.blocks[1]
    assert m.get_parameter("blocks.0.bias") is m.blocks[0].bias
    with pytest.raises(AttributeError, match="nope"):
        m.get_submodule("blocks.nope")
    order = []
    m.apply(lambda mod: order.append(type(mod).__name__))
    assert order == ["Embedding", "Linear", "Linear", "ModuleList", "Linear", "Tied"]  # children first


# -- modes, grads, dtype --------------------------------------------------------------------------------------
def test_train_eval_propagate():
    m = Tied()
    assert all(mod.training for mod in m.modules())
    assert m.eval() is m and not any(mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())
    with pytest.raises(ValueError):
        m.train("no")


def test_dropout_follows_training_mode():
    tinypeft.manual_seed(0)
    d = nn.Dropout(0.5)
    x = tinypeft.ones(1000)
    y = d(x).data
    assert set(np.unique(y)) == {0.0, 2.0}
    d.eval()
    assert d(x) is x


def test_requires_grad_and_zero_grad():
    m = Block()
    m.fc.requires_grad_(False)
    assert [k for k, p in m.named_parameters() if p.requires_grad] == ["ln.weight", "ln.bias"]
    m(tinypeft.randn(2, 4)).sum().backward()
    assert m.fc.weight.grad is None and m.ln.weight.grad is not None
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_frozen_linear_computes_only_the_input_gradient(monkeypatch):
    tinypeft.manual_seed(0)
    layer = nn.Linear(4, 3).requires_grad_(False)
    x = tinypeft.randn(2, 5, 4, requires_grad=True)
    calls = []
    real = backend.matmul
    monkeypatch.setattr(backend, "matmul", lambda a, b: calls.append(b.shape) or real(a, b))
    layer(x).sum().backward()
    assert layer.weight.grad is None and layer.bias.grad is None
    np.testing.assert_allclose(x.grad.data, np.broadcast_to(layer.weight.data.sum(0), (2, 5, 4)), rtol=1e-5)
    assert len(calls) == 2  # forward x W^T, backward g W; no g^T x for the frozen weight


def test_to_double_and_half_keep_parameter_objects():
    m = Block()
    w = m.fc.weight
    m.double()
    assert m.fc.weight is w and w.dtype == np.float64 and m.scale.dtype == np.float64
    assert m(tinypeft.randn(2, 4, dtype="float64")).dtype == np.float64
    m.half()
    assert w.dtype == np.float16
    m.to(tinypeft.float32)
    assert w.dtype == np.float32


def test_deepcopy_is_independent():
    m = Tied()
    c = copy.deepcopy(m)
    assert c.lm_head.weight is c.wte.weight  # the tie survives the copy
    c.wte.weight.data[...] = 0
    assert np.abs(m.wte.weight.data).sum() > 0


# -- state_dict --------------------------------------------------------------------------------------------
def test_state_dict_keys_values_and_round_trip():
    tinypeft.manual_seed(0)
    a, b = Block().eval(), Block().eval()
    sd = a.state_dict()
    # torch's order: own parameters and buffers, then children's; non-persistent "cache" left out
    assert list(sd) == ["scale", "fc.weight", "fc.bias", "ln.weight", "ln.bias"]
    assert not sd["fc.weight"].requires_grad and sd["fc.weight"].data is a.fc.weight.data  # detached, shared
    x = tinypeft.randn(2, 4)
    assert not np.allclose(a(x).data, b(x).data)
    w = b.fc.weight
    result = b.load_state_dict(sd)
    assert result == ([], []) and result.missing_keys == [] and result.unexpected_keys == []
    assert b.fc.weight is w  # filled in place
    np.testing.assert_array_equal(a(x).data, b(x).data)
    # plain arrays load too (a checkpoint read from disk)
    b.load_state_dict({k: v.data.copy() for k, v in sd.items()})


def test_load_state_dict_shape_error_names_key_and_shapes():
    m = nn.Linear(4, 3)
    with pytest.raises(RuntimeError, match=r"size mismatch for weight: .*\(3, 5\).*\(3, 4\)"):
        m.load_state_dict({"weight": np.zeros((3, 5)), "bias": np.zeros(3)})


def test_load_state_dict_missing_and_unexpected():
    m = nn.Linear(4, 3)
    sd = {"weight": np.zeros((3, 4)), "extra": np.zeros(1)}
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "bias"') as e:
        m.load_state_dict(sd)
    assert 'Unexpected key(s) in state_dict: "extra"' in str(e.value)
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert (missing, unexpected) == (["bias"], ["extra"])
    assert np.all(m.weight.data == 0)


# -- layers against NumPy formulas -------------------------------------------------------------------------
def test_linear_forward():
    m = nn.Linear(4, 3)
    x = np.random.default_rng(0).standard_normal((2, 5, 4)).astype(np.float32)
    y = m(tinypeft.tensor(x))
    assert y.shape == (2, 5, 3) and m.weight.shape == (3, 4)
    np.testing.assert_allclose(y.data, x @ m.weight.data.T + m.bias.data, rtol=1e-5, atol=1e-6)
    assert nn.Linear(4, 3, bias=False).bias is None


def test_layer_norm_and_rms_norm_forward():
    x = np.random.default_rng(1).standard_normal((2, 3, 6)).astype(np.float32)
    ln = nn.LayerNorm(6, eps=1e-5)
    ln.weight.data[...] = np.arange(6)
    ln.bias.data[...] = 0.5
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * np.arange(6) + 0.5
    np.testing.assert_allclose(ln(tinypeft.tensor(x)).data, ref, rtol=1e-4, atol=1e-5)
    assert nn.LayerNorm(6, bias=False).bias is None
    assert nn.LayerNorm(6, elementwise_affine=False).weight is None

    rms = nn.RMSNorm([6], eps=1e-6)
    ref = x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(rms(tinypeft.tensor(x)).data, ref, rtol=1e-5, atol=1e-6)
    assert rms.normalized_shape == (6,) and nn.RMSNorm(6).eps is None


def test_embedding_forward_and_padding():
    tinypeft.manual_seed(0)
    m = nn.Embedding(7, 3, padding_idx=-1)
    assert m.padding_idx == 6 and np.all(m.weight.data[6] == 0)
    ids = np.array([[0, 6, 2], [2, 2, 1]])
    out = m(tinypeft.tensor(ids))
    np.testing.assert_array_equal(out.data, m.weight.data[ids])
    out.sum().backward()
    assert np.all(m.weight.grad.data[6] == 0) and np.all(m.weight.grad.data[2] == 3)


def test_containers():
    seq = nn.Sequential(nn.Linear(2, 3), nn.Identity(), nn.Linear(3, 1))
    assert seq(tinypeft.randn(4, 2)).shape == (4, 1)
    assert isinstance(seq[-1], nn.Linear) and len(seq[:2]) == 2
    ml = nn.ModuleList([nn.Linear(1, 1) for _ in range(3)])
    first, last = ml[0], ml[2]
    del ml[1]
    assert list(ml._modules) == ["0", "1"] and ml[1] is last and ml[0] is first
    ml.insert(0, nn.Identity())
    assert isinstance(ml[0], nn.Identity) and ml[-1] is last and len(ml) == 3
    md = nn.ModuleDict({"a": nn.Linear(1, 2)})
    md["b"] = nn.Linear(2, 1)
    assert "b" in md and list(md) == ["a", "b"]
    assert [k for k, _ in md.named_parameters()] == ["a.weight", "a.bias", "b.weight", "b.bias"]


def test_repr_groups_repeated_children():
    blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.Identity()])
    assert repr(blocks) == (
        "ModuleList(\n  (0-2): 3 x Linear(in_features=2, out_features=2, bias=True)\n  (3): Identity()\n)"
    )


def test_repr_is_torch_like():
    m = nn.Sequential(nn.Linear(2, 3), nn.ModuleList([nn.LayerNorm(3), nn.Dropout(0.1)]), nn.Embedding(5, 3, padding_idx=0))
    assert repr(m) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): ModuleList(\n"
        "    (0): LayerNorm((3,), eps=1e-05, elementwise_affine=True, bias=True)\n"
        "    (1): Dropout(p=0.1, inplace=False)\n"
        "  )\n"
        "  (2): Embedding(5, 3, padding_idx=0)\n"
        ")"
    )


# -- initialisation ---------------------------------------------------------------------------------------
def test_linear_init_bounds_and_statistics():
    tinypeft.manual_seed(0)
    m = nn.Linear(256, 512)
    bound = 1 / math.sqrt(256)
    w, b = m.weight.data, m.bias.data
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)  # std of U(-a, a) is a / sqrt(3)
    assert abs(w.mean()) < 0.01 * bound * 10
    tinypeft.manual_seed(0)
    np.testing.assert_array_equal(nn.Linear(256, 512).weight.data, w)  # reproducible from the seed


def test_init_functions():
    tinypeft.manual_seed(0)
    t = tinypeft.empty(400, 300)
    nn.init.normal_(t, mean=1.0, std=0.5)
    assert t.data.mean() == pytest.approx(1.0, abs=0.01) and t.data.std() == pytest.approx(0.5, rel=0.02)
    nn.init.trunc_normal_(t, std=1.0, a=-0.5, b=0.5)
    assert np.abs(t.data).max() <= 0.5
    nn.init.zeros_(t)
    assert not t.data.any()
    nn.init.ones_(t)
    assert np.all(t.data == 1)
    nn.init.uniform_(t, -3, 3)
    assert np.abs(t.data).max() <= 3 and t.data.std() == pytest.approx(math.sqrt(3), rel=0.02)
    nn.init.kaiming_uniform_(t, a=0, nonlinearity="relu")  # bound sqrt(2) * sqrt(3 / fan_in)
    assert np.abs(t.data).max() <= math.sqrt(6 / 300)
    assert nn.init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    emb = nn.Embedding(300, 200)
    assert emb.weight.data.std() == pytest.approx(1.0, rel=0.02)


# -- building without storage -----------------------------------------------------------------------------
def test_init_empty_weights_allocates_nothing():
    tracemalloc.start()
    try:
        with nn.init_empty_weights():
            m = nn.Sequential(nn.Linear(20000, 20000), nn.Embedding(50000, 20000), nn.LayerNorm(20000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20, f"building allocated {peak / 2**20:.1f} MiB"
    assert sum(p.numel() for p in m.parameters()) == 20000 * 20000 + 20000 + 50000 * 20000 + 2 * 20000
    w = m[0].weight
    assert w.shape == (20000, 20000) and w.dtype == np.float32 and w.requires_grad and "unallocated" in repr(w)
    with pytest.raises(RuntimeError, match="init_empty_weights"):
        w.data
    with pytest.raises(RuntimeError, match="init_empty_weights"):
        m[2](tinypeft.randn(20000))


def test_empty_model_is_filled_by_load_state_dict():
    tinypeft.manual_seed(0)
    ref = Block()
    with nn.init_empty_weights():
        m = Block()
    m.load_state_dict(ref.state_dict())
    x = tinypeft.randn(2, 4)
    np.testing.assert_array_equal(m.eval()(x).data, ref.eval()(x).data)
    m.fc.weight.data[0, 0] = 123.0  # the module owns a copy, not the checkpoint's array
    assert ref.fc.weight.data[0, 0] != 123.0


def test_to_empty_and_skip_init():
    with nn.init_empty_weights():
        m = nn.Linear(3, 2)
    m.to_empty()
    assert m.weight.data.shape == (2, 3)
    s = nn.utils.skip_init(nn.Linear, 3, 2)
    assert s.weight.is_allocated() and s.bias.data.shape == (2,)


# -- live against torch (parity extra) ---------------------------------------------------------------------
@pytest.mark.parity
def test_same_keys_and_outputs_as_torch():
    import torch

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(11, 6, padding_idx=0)
            self.layers = torch.nn.ModuleList([torch.nn.Linear(6, 6) for _ in range(2)])
            self.norms = torch.nn.ModuleDict({"ln": torch.nn.LayerNorm(6), "rms": torch.nn.RMSNorm(6, eps=1e-6)})
            self.head = torch.nn.Sequential(torch.nn.Linear(6, 3, bias=False))
            self.register_buffer("offset", torch.arange(3.0))

        def forward(self, ids):
            x = self.emb(ids)
            for layer in self.layers:
                x = layer(x)
            return self.head(self.norms["rms"](self.norms["ln"](x))) + self.offset

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(11, 6, padding_idx=0)
            self.layers = nn.ModuleList([nn.Linear(6, 6) for _ in range(2)])
            self.norms = nn.ModuleDict({"ln": nn.LayerNorm(6), "rms": nn.RMSNorm(6, eps=1e-6)})
            self.head = nn.Sequential(nn.Linear(6, 3, bias=False))
            self.register_buffer("offset", tinypeft.arange(3.0))

        def forward(self, ids):
            x = self.emb(ids)
            for layer in self.layers:
                x = layer(x)
            return self.head(self.norms["rms"](self.norms["ln"](x))) + self.offset

    torch.manual_seed(0)
    tnet, net = TorchNet().double(), Net().double()
    tsd = tnet.state_dict()
    assert list(net.state_dict()) == list(tsd)
    assert [(k, tuple(p.shape)) for k, p in net.named_parameters()] == [(k, tuple(p.shape)) for k, p in tnet.named_parameters()]
    net.load_state_dict({k: v.numpy() for k, v in tsd.items()})
    ids = np.array([[0, 3, 10], [5, 5, 1]])
    np.testing.assert_allclose(net(tinypeft.tensor(ids)).data, tnet(torch.tensor(ids)).detach().numpy(), rtol=1e-12, atol=1e-12)
    assert repr(net).replace("Net(", "") == repr(tnet).replace("TorchNet(", "")
