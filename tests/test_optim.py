"""Optimisers against torch.optim: stored reference steps (always run) and a live comparison (parity)."""
import json
import math
from pathlib import Path

import numpy as np
import pytest

import tinypeft
from tinypeft import nn, optim

REFERENCE = Path(__file__).parent / "fixtures" / "optim_reference.npz"
ref = np.load(REFERENCE)
CONFIGS = sorted(k.split("/")[0] for k in ref.files if k.endswith("/config"))
STEPS = max(int(k.rsplit("_step", 1)[1]) for k in ref.files if k.startswith("grad0_step")) + 1


def _replay(name, steps=STEPS):
    """Run tinypeft's optimiser on the stored params and grads; return the params after each step."""
    config = json.loads(str(ref[f"{name}/config"]))
    n = sum(1 for k in ref.files if k.startswith("param"))
    params = [nn.Parameter(ref[f"param{i}"].copy()) for i in range(n)]
    opt = getattr(optim, config["optimizer"])(params, **config["kwargs"])
    history = []
    for t in range(steps):
        for i, p in enumerate(params):
            p.grad = tinypeft.tensor(ref[f"grad{i}_step{t}"].copy())
        opt.step()
        history.append([p.data.copy() for p in params])
    return history


@pytest.mark.parametrize("name", CONFIGS)
def test_matches_stored_torch_steps(name):
    history = _replay(name)
    worst = max(
        np.abs(history[t][i] - ref[f"{name}/param{i}_step{t}"]).max()
        for t in range(STEPS)
        for i in range(len(history[0]))
    )
    assert worst < 1e-6, f"{name}: max abs diff {worst:.3g} vs torch {ref['torch_version']}"


def _frozen_model():
    tinypeft.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 2))
    model[0].requires_grad_(False)
    x = tinypeft.randn(3, 4)
    return model, x


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), lambda ps: optim.AdamW(ps, lr=0.1)])
def test_frozen_parameters_get_no_update_and_no_state(make):
    model, x = _frozen_model()
    frozen = {k: v.data.copy() for k, v in model[0].named_parameters()}
    opt = make(model.parameters())
    model(x).sum().backward()
    opt.step()
    assert set(map(id, opt.state)) == {id(p) for p in model[1].parameters()}
    for k, p in model[0].named_parameters():
        assert p.grad is None
        np.testing.assert_array_equal(p.data, frozen[k])


def test_params_without_grad_are_skipped():
    a, b = nn.Parameter(np.ones(3)), nn.Parameter(np.ones(3))
    opt = optim.AdamW([a, b], lr=0.1)
    a.grad = tinypeft.tensor(np.ones(3))
    opt.step()
    assert b not in opt.state.keys() and len(opt.state) == 1
    np.testing.assert_array_equal(b.data, np.ones(3))


def test_zero_grad_sets_none_or_zero():
    p = nn.Parameter(np.ones(2))
    opt = optim.SGD([p], lr=0.1)
    p.grad = tinypeft.tensor(np.ones(2))
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.data, 0)
    opt.zero_grad()
    assert p.grad is None


def test_param_groups_have_their_own_lr():
    a, b = nn.Parameter(np.zeros(1)), nn.Parameter(np.zeros(1))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    for p in (a, b):
        p.grad = tinypeft.tensor(np.ones(1))
    opt.step()
    assert a.data[0] == pytest.approx(-0.1) and b.data[0] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="more than one"):
        optim.SGD([{"params": [a]}, {"params": [a]}])


def test_state_dict_round_trip_resumes_identically():
    history = _replay("adamw_amsgrad")
    n = len(history[0])
    params = [nn.Parameter(ref[f"param{i}"].copy()) for i in range(n)]
    config = json.loads(str(ref["adamw_amsgrad/config"]))["kwargs"]
    opt = optim.AdamW(params, **config)
    for t in range(STEPS):
        if t == 2:  # checkpoint and resume into fresh objects mid-run
            saved = opt.state_dict()
            params = [nn.Parameter(p.data.copy()) for p in params]
            opt = optim.AdamW(params, lr=123.0)
            opt.load_state_dict(saved)
            assert opt.param_groups[0]["lr"] == config["lr"]
        for i, p in enumerate(params):
            p.grad = tinypeft.tensor(ref[f"grad{i}_step{t}"].copy())
        opt.step()
    for i, p in enumerate(params):
        np.testing.assert_allclose(p.data, history[-1][i], rtol=0, atol=1e-12)


def test_invalid_arguments():
    p = [nn.Parameter(np.ones(1))]
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError):
        optim.AdamW(p, lr=-1.0)
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)


def test_float32_params_stay_float32():
    p = nn.Parameter(np.ones(3, dtype=np.float32))
    opt = optim.AdamW([p], lr=0.1)
    p.grad = tinypeft.tensor(np.ones(3, dtype=np.float32))
    opt.step()
    assert p.dtype == np.float32 and opt.state[p]["exp_avg"].dtype == np.float32


def test_clip_grad_norm_returns_total_norm_and_scales():
    a, b = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(1))
    a.grad, b.grad = tinypeft.tensor(np.array([3.0, 0.0])), tinypeft.tensor(np.array([4.0]))
    total = nn.utils.clip_grad_norm_([a, b], max_norm=1.0)
    assert total.item() == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([a.grad.data, b.grad.data]), np.array([3, 0, 4]) / (5 + 1e-6))
    # under the limit: unchanged
    total = nn.utils.clip_grad_norm_([a, b], max_norm=10.0)
    assert total.item() == pytest.approx(1.0, abs=1e-6)
    assert nn.utils.clip_grad_norm_([a, b], 1.0, norm_type=math.inf).item() == pytest.approx(0.8, abs=1e-6)


def test_linear_schedule_with_warmup():
    p = nn.Parameter(np.ones(1))
    opt = optim.SGD([p], lr=1.0)
    sched = optim.lr_scheduler.get_linear_schedule_with_warmup(opt, num_warmup_steps=2, num_training_steps=6)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(6):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    assert lrs == pytest.approx([0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0])


def test_cosine_schedule_with_warmup():
    p = nn.Parameter(np.ones(1))
    opt = optim.SGD([p], lr=2.0)
    sched = optim.lr_scheduler.get_cosine_schedule_with_warmup(opt, num_warmup_steps=1, num_training_steps=5)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(4):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    expected = [0.0] + [2.0 * 0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)]
    assert lrs == pytest.approx(expected)


# -- live against torch (parity extra) ---------------------------------------------------------------------
@pytest.mark.parity
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("nesterov", [False, True])
def test_live_against_torch(nesterov, amsgrad):
    import torch
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal((5, 3))
    grads = [rng.standard_normal((5, 3)) * s for s in (1.0, 5.0, 0.1, 2.0, 0.5, 3.0, 0.01, 1.0)]
    configs = [
        ("SGD", dict(lr=0.05, momentum=0.9, nesterov=nesterov, weight_decay=0.1)),
        ("AdamW", dict(lr=0.02, betas=(0.9, 0.95), eps=1e-7, weight_decay=0.1, amsgrad=amsgrad)),
    ]
    for cls, kwargs in configs:
        tp, ours = torch.tensor(p0.copy(), requires_grad=True), nn.Parameter(p0.copy())
        topt, oopt = getattr(torch.optim, cls)([tp], **kwargs), getattr(optim, cls)([ours], **kwargs)
        for g in grads:
            tp.grad, ours.grad = torch.tensor(g), tinypeft.tensor(g.copy())
            topt.step()
            oopt.step()
        assert np.abs(tp.detach().numpy() - ours.data).max() < 1e-10, cls


@pytest.mark.parity
def test_clip_grad_norm_live_against_torch():
    import torch
    rng = np.random.default_rng(2)
    gs = [rng.standard_normal(s) for s in ((3, 4), (7,))]
    for norm_type in (2.0, 1.0, math.inf):
        tps = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in gs]
        ops = [nn.Parameter(np.zeros(g.shape)) for g in gs]
        for tp, op, g in zip(tps, ops, gs):
            tp.grad, op.grad = torch.tensor(g), tinypeft.tensor(g.copy())
        t_total = torch.nn.utils.clip_grad_norm_(tps, 0.5, norm_type)
        o_total = nn.utils.clip_grad_norm_(ops, 0.5, norm_type)
        assert o_total.item() == pytest.approx(t_total.item(), rel=1e-12)
        for tp, op in zip(tps, ops):
            np.testing.assert_allclose(op.grad.data, tp.grad.numpy(), rtol=1e-12)
