"""add_weighted_adapter against PEFT 0.21.2, every combination type, on PEFT's custom models: Linear (MLP), Embedding
and GPT-2's Conv1D (EmbConv1D), Conv2d (parity marker).

Two adapters with random factors (init_lora_weights=False) are built in PEFT, copied into tinypeft by
state-dict key, and combined in both libraries with the same arguments.

How DARE is compared honestly: PEFT draws its Bernoulli masks with torch.bernoulli from torch's generator,
tinypeft from its own NumPy generator, so a shared seed does not give shared masks. The test records every mask
PEFT draws (torch.bernoulli wrapped, the real draw kept) and replays them, in the same order, as tinypeft's
uniform draws (0 where PEFT kept an entry, 1 where it dropped it, so `u < density` is PEFT's mask); the replay
checks each mask's shape, so a different draw order fails. Everything after the masks is then tinypeft's own
numerics. tests/test_merge_utils.py checks the unpatched masks' statistics (kept fraction, unbiased rescale).

Linear/ties/dare/magnitude-prune types are compared by the combined adapter's outputs (and factors); the SVD
types by each layer's delta weight s B A, as singular vectors are only defined up to sign.
"""
from unittest import mock

import numpy as np
import pytest
import torch
from peft import LoraConfig as PeftLoraConfig
from peft import get_peft_model as peft_get_peft_model

from test_peft_custom_models import TORCH_MODELS, close, copy_weights, out_pt, out_tp, to_tp
from tinypeft.peft import LoraConfig, get_peft_model
from tinypeft.peft.utils import merge_utils

pytestmark = pytest.mark.parity

FACTOR_TYPES = ["linear", "ties", "dare_linear", "dare_ties", "magnitude_prune"]
SVD_TYPES = ["svd", "ties_svd", "dare_linear_svd", "dare_ties_svd", "magnitude_prune_svd"]
TARGETS = {"MLP": ["lin0", "lin1"], "EmbConv1D": ["emb", "conv1d"], "Conv2d": ["conv2d"]}


def build(name, r_b=4):
    torch.manual_seed(0)
    base = TORCH_MODELS[name]()
    ours = to_tp(base, name)
    kw = dict(target_modules=TARGETS[name], init_lora_weights=False)
    pm_pt = peft_get_peft_model(base, PeftLoraConfig(r=4, lora_alpha=8, **kw)).eval()
    pm_pt.add_adapter("b", PeftLoraConfig(r=r_b, lora_alpha=3, **kw))
    pm_tp = get_peft_model(ours, LoraConfig(r=4, lora_alpha=8, **kw)).eval()
    pm_tp.add_adapter("b", LoraConfig(r=r_b, lora_alpha=3, **kw))
    copy_weights(pm_pt, pm_tp)
    return pm_pt, pm_tp


def combine_both(pm_pt, pm_tp, monkeypatch, **kwargs):
    """Combine in PEFT (recording its DARE masks), then in tinypeft replaying them."""
    masks, bernoulli = [], torch.bernoulli

    def record(p, *args, **kw):
        m = bernoulli(p, *args, **kw)
        masks.append(m.numpy().astype(bool))
        return m

    with mock.patch("torch.bernoulli", record):
        pm_pt.add_weighted_adapter(["default", "b"], [0.7, -0.4], "mix", **kwargs)

    class Replay:
        def random(self, shape):
            mask = masks.pop(0)
            assert mask.shape == tuple(shape), "tinypeft draws its masks in another order than PEFT"
            return np.where(mask, 0.0, 1.0)

    monkeypatch.setattr(merge_utils, "generator", Replay)
    pm_tp.add_weighted_adapter(["default", "b"], [0.7, -0.4], "mix", **kwargs)
    assert not masks, "PEFT drew masks that tinypeft did not use"


def tp_layers(pm):
    return {n: m for n, m in pm.base_model.model.named_modules() if hasattr(m, "lora_A")}


def pt_layers(pm):
    return {n: m for n, m in pm.base_model.model.named_modules() if hasattr(m, "lora_A") and "." not in n}


@pytest.mark.parametrize("name", ["MLP", "EmbConv1D", "Conv2d"])
@pytest.mark.parametrize("combination_type,majority_sign_method",
                         [(t, "total") for t in FACTOR_TYPES] + [("ties", "frequency"), ("dare_ties", "frequency")])
def test_factor_merges_give_peft_outputs(name, combination_type, majority_sign_method, monkeypatch):
    pm_pt, pm_tp = build(name)
    combine_both(pm_pt, pm_tp, monkeypatch, combination_type=combination_type, density=0.5,
                        majority_sign_method=majority_sign_method)
    ours, theirs = pm_tp.state_dict(), pm_pt.state_dict()
    mix = [k for k in theirs if ".mix" in k]
    assert sorted(mix) == sorted(k for k in ours if ".mix" in k) and mix
    for k in mix:
        close(ours[k].numpy() if hasattr(ours[k], "numpy") else ours[k], theirs[k].numpy())
    pm_pt.set_adapter("mix")
    pm_tp.set_adapter("mix")
    close(out_tp(pm_tp, name), out_pt(pm_pt, name))


@pytest.mark.parametrize("name", ["MLP", "EmbConv1D", "Conv2d"])
@pytest.mark.parametrize("combination_type", SVD_TYPES)
@pytest.mark.parametrize("svd_rank", [None, 3, 6])
def test_svd_merges_give_peft_delta_weights(name, combination_type, svd_rank, monkeypatch):
    """svd_full_matrices=False: with True PEFT breaks the layers whose min(out, in) is below the rank (next test)."""
    pm_pt, pm_tp = build(name, r_b=2)  # unequal ranks: the SVD types accept them
    combine_both(pm_pt, pm_tp, monkeypatch, combination_type=combination_type, density=0.6, svd_rank=svd_rank,
                 svd_full_matrices=False)
    ours, theirs = tp_layers(pm_tp), pt_layers(pm_pt)
    assert sorted(ours) == sorted(theirs)
    for n in ours:
        close(ours[n].get_delta_weight("mix"), theirs[n].get_delta_weight("mix").detach().numpy())
    pm_pt.set_adapter("mix")
    pm_tp.set_adapter("mix")
    close(out_tp(pm_tp, name), out_pt(pm_pt, name))


@pytest.mark.parametrize("name", ["MLP", "EmbConv1D"])
def test_svd_full_matrices_where_peft_breaks_the_adapter(name, monkeypatch):
    """With the default svd_full_matrices=True and a rank above min(out, in) (MLP's lin1 is 20 -> 2, the Conv1D
    5 -> 1), PEFT stores a B [out, min] that cannot multiply its A [r, in]; tinypeft pads B with zero columns,
    so its update is the exact weighted sum (exact because that sum's rank is at most min(out, in))."""
    pm_pt, pm_tp = build(name, r_b=2)
    combine_both(pm_pt, pm_tp, monkeypatch, combination_type="svd")
    broken = 0
    for n, layer in tp_layers(pm_tp).items():
        theirs = pt_layers(pm_pt)[n]
        if min(layer.in_features, layer.out_features) >= 4:
            close(layer.get_delta_weight("mix"), theirs.get_delta_weight("mix").detach().numpy())
            continue
        with pytest.raises(RuntimeError, match="cannot be multiplied"):
            theirs.get_delta_weight("mix")
        broken += 1
        exact = 0.7 * layer.get_delta_weight("default") - 0.4 * layer.get_delta_weight("b")
        close(layer.get_delta_weight("mix"), exact)
        assert layer.lora_B["mix"].weight.shape == (layer.out_features, 4) if layer.lora_B else True
    assert broken == 1


@pytest.mark.parametrize("name", ["MLP", "EmbConv1D"])
def test_svd_clamp_gives_peft_delta_weights_given_the_same_singular_vectors(name, monkeypatch):
    """The clamp is a quantile of the factors' entries, so it depends on the singular vectors' signs, which
    NumPy's and torch's LAPACK choose differently (lin1 here). As with DARE's masks, tinypeft is handed
    torch's SVD of the same matrix; the truncation, the quantile and the clipping are then its own."""
    pm_pt, pm_tp = build(name, r_b=2)

    def torch_svd(a, full_matrices=True):
        return tuple(t.numpy() for t in torch.linalg.svd(torch.from_numpy(a), full_matrices=full_matrices))

    monkeypatch.setattr(np.linalg, "svd", torch_svd)
    combine_both(pm_pt, pm_tp, monkeypatch, combination_type="svd", svd_clamp=0.9, svd_full_matrices=False)
    clipped = 0
    for n, layer in tp_layers(pm_tp).items():
        want = pt_layers(pm_pt)[n].get_delta_weight("mix").detach().numpy()
        close(layer.get_delta_weight("mix"), want)
        exact = 0.7 * layer.get_delta_weight("default") - 0.4 * layer.get_delta_weight("b")
        clipped += not np.allclose(want, exact, rtol=1e-3, atol=1e-4)
    assert clipped  # the clamp changed some update, so the comparison covers it


def test_svd_driver_is_refused_as_peft_refuses_it_on_cpu():
    pm_pt, pm_tp = build("MLP")
    with pytest.raises(RuntimeError, match="driver"):  # torch: "only supported on CUDA inputs"
        pm_pt.add_weighted_adapter(["default", "b"], [0.5, 0.5], "mix", combination_type="svd", svd_driver="gesvd")
    with pytest.raises(NotImplementedError, match="gesvdj"):
        pm_tp.add_weighted_adapter(["default", "b"], [0.5, 0.5], "mix", combination_type="svd", svd_driver="gesvd")
    assert "mix" not in pm_tp.peft_config
