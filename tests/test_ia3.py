"""(IA)^3 behind PEFT's API: config, the two scalings, gradients, merging, adapters, files, and PEFT interop.

Interop cases come from tests/fixtures/make_peft_fixtures.py (ia3_opt, ia3_t5: adapters saved by peft 0.21.2,
with seeded noise of scale 1.0 on every vector, and peft's logits).
"""
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import tinypeft as tp
from tinypeft import nn
from tinypeft.checkpoint_io import load_file, read_header
from tinypeft.models import AutoModelForCausalLM, AutoModelForSeq2SeqLM
from tinypeft.models.gpt2 import Conv1D
from tinypeft.peft import IA3Config, PeftModel, TaskType, get_peft_model
from tinypeft.peft.auto import _auto_for_task
from tinypeft.peft.tuners.ia3.layer import IA3Layer, Linear
from tinypeft.testing import gradcheck

FIX = "tests/fixtures/models"
PEFT = Path(__file__).parent / "fixtures" / "peft"
IA3_CASES = ["ia3_opt", "ia3_t5", "ia3_gpt2", "ia3_llama", "ia3_bert_seqcls", "ia3_mt5"]
IDS = np.array([[5, 6, 7, 8, 9], [10, 11, 12, 0, 0]])
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])


def opt():
    return AutoModelForCausalLM.from_pretrained(f"{FIX}/opt")


def ia3_layers(model):
    return {n: m for n, m in model.named_modules() if isinstance(m, IA3Layer)}


def logits(model, **kw):
    with tp.no_grad():
        return model(input_ids=IDS, attention_mask=MASK, **kw).logits.detach().numpy()


def perturb(model, seed=0, scale=0.5):
    """Move every vector away from 1 so the adapter changes the outputs."""
    rng = np.random.default_rng(seed)
    for n, p in model.named_parameters():
        if ".ia3_l." in n:
            p.data = (p.data + scale * rng.standard_normal(p.shape)).astype(np.float32)


def random_biases(model, seed=5):
    """The fixture models' biases are all zero; merging must scale a bias, so give them values."""
    rng = np.random.default_rng(seed)
    for n, p in model.named_parameters():
        if n.endswith(".bias"):
            p.data = (0.5 * rng.standard_normal(p.shape)).astype(np.float32)
    return model


# -- config ----------------------------------------------------------------------------------------------------
def test_config_fields_and_defaults_match_peft():
    c = IA3Config()
    assert c.peft_type == "IA3"
    assert (c.target_modules, c.exclude_modules, c.feedforward_modules, c.fan_in_fan_out, c.modules_to_save,
            c.init_ia3_weights) == (None, None, None, False, None, True)
    # the keys PEFT wrote in its own adapter_config.json
    assert sorted(c.to_dict()) == sorted(json.loads((PEFT / "ia3_opt" / "adapter_config.json").read_text()))


def test_feedforward_modules_must_be_a_subset_of_target_modules():
    c = IA3Config(target_modules=["k", "v", "wo"], feedforward_modules=["wo"])
    assert c.target_modules == {"k", "v", "wo"} and c.feedforward_modules == {"wo"}
    with pytest.raises(ValueError, match="`feedforward_modules` should be a subset of `target_modules`"):
        IA3Config(target_modules=["k", "v"], feedforward_modules=["wo"])
    IA3Config(target_modules=".*k$", feedforward_modules=["wo"])  # a regex: PEFT does not check


@pytest.mark.parametrize("arch, targets, feedforward", [
    ("opt", {"q_proj", "k_proj", "fc2"}, {"fc2"}),
    ("gpt2", {"c_attn", "mlp.c_proj"}, {"mlp.c_proj"}),
    ("llama", {"k_proj", "v_proj", "down_proj"}, {"down_proj"}),
    ("t5", {"k", "v", "wo"}, {"wo"}),
])
def test_default_targets_and_feedforward_per_model_type(arch, targets, feedforward):
    auto = AutoModelForSeq2SeqLM if arch == "t5" else AutoModelForCausalLM
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GPT-2: fan_in_fan_out forced to True
        pm = get_peft_model(auto.from_pretrained(f"{FIX}/{arch}"), IA3Config())
    c = pm.peft_config["default"]
    assert c.target_modules == targets and c.feedforward_modules == feedforward
    for name, layer in ia3_layers(pm).items():
        ff = any(name.endswith(f) for f in feedforward)
        assert layer.is_feedforward == ff
        shape = (1, layer.in_features) if ff else (layer.out_features, 1)
        assert tuple(layer.ia3_l["default"].shape) == shape


def opt_with_type(model_type):
    model = opt()
    model.config.model_type = model_type
    return model


def test_no_default_for_an_unknown_model_type():
    with pytest.raises(ValueError, match="target_modules"):
        get_peft_model(opt_with_type("unknown"), IA3Config())
    with pytest.raises(ValueError, match="Please specify `feedforward_modules`"):
        get_peft_model(opt_with_type("unknown"), IA3Config(target_modules=["fc2"]))


# -- the layer ---------------------------------------------------------------------------------------------
def test_outputs_scaled_for_attention_inputs_scaled_for_feedforward():
    rng = np.random.default_rng(0)
    base = nn.Linear(3, 4)
    W, b = base.weight.detach().numpy().copy(), base.bias.detach().numpy().copy()
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    out_layer = Linear(base, is_feedforward=False)
    out_layer.update_layer("default", init_ia3_weights=False)
    l = out_layer.ia3_l["default"].detach().numpy()
    assert l.shape == (4, 1)
    np.testing.assert_allclose(out_layer(tp.tensor(x)).detach().numpy(), (x @ W.T + b) * l[:, 0], rtol=1e-6, atol=1e-6)

    ff_layer = Linear(nn.Linear(3, 4), is_feedforward=True)
    ff_layer.update_layer("default", init_ia3_weights=False)
    W2, b2 = ff_layer.base_layer.weight.detach().numpy(), ff_layer.base_layer.bias.detach().numpy()
    l2 = ff_layer.ia3_l["default"].detach().numpy()
    assert l2.shape == (1, 3)
    np.testing.assert_allclose(ff_layer(tp.tensor(x)).detach().numpy(), (x * l2[0]) @ W2.T + b2, rtol=1e-6, atol=1e-6)


def small_layer(feedforward, conv1d, adapters=1):
    base = Conv1D(4, 3) if conv1d else nn.Linear(3, 4)
    nn.init.normal_(base.weight)
    nn.init.normal_(base.bias)
    layer = Linear(base, is_feedforward=feedforward, fan_in_fan_out=conv1d)
    names = [f"a{i}" for i in range(adapters)]
    for name in names:
        layer.update_layer(name, init_ia3_weights=False)
    layer.set_adapter(names)
    return layer.double()


@pytest.mark.parametrize("feedforward", [False, True])
@pytest.mark.parametrize("conv1d", [False, True])
@pytest.mark.parametrize("adapters", [1, 2])
def test_gradients_match_finite_differences(feedforward, conv1d, adapters):
    layer = small_layer(feedforward, conv1d, adapters)
    layer.base_layer.weight.requires_grad = True  # frozen in practice; checked here so dW is proven too
    x = tp.tensor(np.random.default_rng(1).standard_normal((2, 3, 3)), requires_grad=True)
    ls = [layer.ia3_l[a] for a in layer.active_adapters]
    assert all(p.requires_grad and p.dtype == np.float64 for p in ls)
    assert gradcheck(lambda *_: layer(x), [x, layer.base_layer.weight, layer.base_layer.bias, *ls])


# -- on a model --------------------------------------------------------------------------------------------
def test_fresh_adapter_is_a_no_op_and_only_ia3_vectors_train(capsys):
    model = opt()
    before = logits(model)
    base_total = sum(p.numel() for p in model.parameters())
    pm = get_peft_model(model, IA3Config(task_type=TaskType.CAUSAL_LM))
    assert type(pm).__name__ == "PeftModelForCausalLM"
    np.testing.assert_array_equal(logits(pm), before)
    names = [n for n, p in pm.named_parameters() if p.requires_grad]
    assert names and all(n.endswith(".ia3_l.default") for n in names)
    # OPT (hidden 32, ffn 64, 2 layers): q_proj and k_proj scale outputs [32, 1], fc2 scales its input [1, 64]
    expected = 2 * (32 + 32 + 64)
    assert pm.get_nb_trainable_parameters() == (expected, base_total + expected)
    pm.print_trainable_parameters()
    t, a = expected, base_total + expected
    assert capsys.readouterr().out.strip() == f"trainable params: {t:,d} || all params: {a:,d} || trainable%: {100 * t / a:.4f}"


def test_gpt2_conv1d_forces_fan_in_fan_out_and_merges_in_the_right_axis():
    base = random_biases(AutoModelForCausalLM.from_pretrained(f"{FIX}/gpt2"))
    with pytest.warns(UserWarning, match="Setting fan_in_fan_out to True"):
        pm = get_peft_model(base, IA3Config(task_type="CAUSAL_LM"))
    assert pm.peft_config["default"].fan_in_fan_out
    layers = ia3_layers(pm.get_base_model())
    assert tuple(layers["transformer.h.0.attn.c_attn"].ia3_l["default"].shape) == (96, 1)  # out = 3 * 32
    assert tuple(layers["transformer.h.0.mlp.c_proj"].ia3_l["default"].shape) == (1, 64)  # in = n_inner
    perturb(pm)
    unmerged = logits(pm)
    pm.merge_adapter()
    np.testing.assert_allclose(logits(pm), unmerged, atol=1e-5, rtol=0)


def test_merge_unmerge_round_trip_and_merged_equals_unmerged():
    pm = get_peft_model(random_biases(opt()), IA3Config(task_type="CAUSAL_LM"))
    perturb(pm)
    weights = {n: p.detach().numpy().copy() for n, p in pm.named_parameters() if "base_layer" in n}
    unmerged = logits(pm)
    pm.merge_adapter()
    assert all(layer.merged for layer in ia3_layers(pm).values())
    np.testing.assert_allclose(logits(pm), unmerged, atol=1e-5, rtol=0)
    changed = [n for n, p in pm.named_parameters() if "base_layer" in n and not np.array_equal(p.detach().numpy(), weights[n])]
    # outputs scaled: weight and bias change; inputs scaled (fc2): only the weight
    assert "base_model.model.model.decoder.layers.0.self_attn.q_proj.base_layer.bias" in changed
    assert "base_model.model.model.decoder.layers.0.fc2.base_layer.bias" not in changed
    pm.unmerge_adapter()
    for n, p in pm.named_parameters():
        if n in weights:
            np.testing.assert_allclose(p.detach().numpy(), weights[n], atol=1e-5, rtol=0)
    np.testing.assert_allclose(logits(pm), unmerged, atol=1e-5, rtol=0)


def test_merge_and_unload_unload_and_disable_adapter():
    model = random_biases(opt())
    plain = logits(model)
    pm = get_peft_model(model, IA3Config(task_type="CAUSAL_LM"))
    perturb(pm)
    adapted = logits(pm)
    assert np.abs(adapted - plain).max() > 1e-3
    with pm.disable_adapter():
        np.testing.assert_array_equal(logits(pm), plain)
    pm.merge_adapter()
    with pm.disable_adapter():  # merged weights are unmerged first, as PEFT
        np.testing.assert_allclose(logits(pm), plain, atol=1e-5, rtol=0)
    merged = pm.merge_and_unload()
    assert type(merged).__name__ == "OPTForCausalLM" and not ia3_layers(merged)
    np.testing.assert_allclose(logits(merged), adapted, atol=1e-5, rtol=0)

    pm2 = get_peft_model(random_biases(opt()), IA3Config(task_type="CAUSAL_LM"))
    perturb(pm2)
    restored = pm2.unload()
    assert not ia3_layers(restored)
    np.testing.assert_array_equal(logits(restored), plain)


def test_several_adapters_multiply_when_active_and_can_be_deleted():
    pm = get_peft_model(opt(), IA3Config(task_type="CAUSAL_LM"))
    pm.add_adapter("other", IA3Config(task_type="CAUSAL_LM", target_modules=["k_proj", "fc2"],
                                      feedforward_modules=["fc2"]))
    perturb(pm, seed=1)
    k = ia3_layers(pm.get_base_model())["model.decoder.layers.0.self_attn.k_proj"]
    assert k.active_adapters == ["default"]
    assert k.ia3_l["default"].requires_grad and not k.ia3_l["other"].requires_grad
    one = logits(pm)
    pm.set_adapter("other")
    assert not k.ia3_l["default"].requires_grad and k.ia3_l["other"].requires_grad
    two = logits(pm)
    assert np.abs(one - two).max() > 1e-3

    # both active: each layer scales by the product of the vectors, i.e. one adapter holding l_1 * l_2
    pm.base_model.set_adapter(["default", "other"])
    both = logits(pm)
    product = get_peft_model(opt(), IA3Config(task_type="CAUSAL_LM", target_modules=["q_proj", "k_proj", "fc2"],
                                              feedforward_modules=["fc2"]))
    for name, layer in ia3_layers(product.get_base_model()).items():
        src = ia3_layers(pm.get_base_model())[name]
        layer.ia3_l["default"].data = np.prod([src.ia3_l[a].data for a in src.ia3_l], axis=0)
    np.testing.assert_allclose(both, logits(product), atol=1e-5, rtol=0)
    pm.merge_adapter()
    np.testing.assert_allclose(logits(pm), both, atol=1e-5, rtol=0)
    pm.unmerge_adapter()

    pm.set_adapter("default")
    pm.delete_adapter("other")
    assert list(pm.peft_config) == ["default"] and "other" not in k.ia3_l
    np.testing.assert_allclose(logits(pm), one, atol=1e-5, rtol=0)  # after a merge/unmerge round trip


def test_add_weighted_adapter_sums_weighted_vectors():
    pm = get_peft_model(opt(), IA3Config(task_type="CAUSAL_LM"))
    pm.add_adapter("b", IA3Config(task_type="CAUSAL_LM"))
    perturb(pm)
    pm.add_weighted_adapter(["default", "b"], [0.3, 0.7], "mix")
    for layer in ia3_layers(pm).values():
        want = 0.3 * layer.ia3_l["default"].data + 0.7 * layer.ia3_l["b"].data
        np.testing.assert_allclose(layer.ia3_l["mix"].data, want, rtol=1e-6)


def test_training_moves_only_the_vectors():
    pm = get_peft_model(opt(), IA3Config(task_type="CAUSAL_LM"))
    frozen = {n: p.detach().numpy().copy() for n, p in pm.named_parameters() if not p.requires_grad}
    params = [p for p in pm.parameters() if p.requires_grad]
    opt_ = tp.optim.AdamW(params, lr=0.05, weight_decay=0.0)
    losses = []
    for _ in range(5):
        loss = pm(input_ids=IDS, attention_mask=MASK, labels=IDS).loss
        opt_.zero_grad()
        loss.backward()
        opt_.step()
        losses.append(float(loss.detach().numpy()))
    assert losses[-1] < losses[0]
    assert all(np.array_equal(p.detach().numpy(), frozen[n]) for n, p in pm.named_parameters() if n in frozen)


# -- files -------------------------------------------------------------------------------------------------
def test_save_pretrained_writes_peft_keys_shapes_and_config(tmp_path):
    pm = get_peft_model(opt(), IA3Config(task_type="CAUSAL_LM"))
    perturb(pm)
    pm.save_pretrained(tmp_path)
    state = load_file(tmp_path / "adapter_model.safetensors")
    header, _ = read_header(tmp_path / "adapter_model.safetensors")
    assert header["__metadata__"] == {"format": "pt"}
    assert all(h["dtype"] == "F32" for k, h in header.items() if k != "__metadata__")
    prefix = "base_model.model.model.decoder.layers"
    want = {f"{prefix}.{i}.self_attn.q_proj.ia3_l": (32, 1) for i in range(2)}
    want |= {f"{prefix}.{i}.self_attn.k_proj.ia3_l": (32, 1) for i in range(2)}
    want |= {f"{prefix}.{i}.fc2.ia3_l": (1, 64) for i in range(2)}
    assert {k: tuple(v.shape) for k, v in state.items()} == want
    assert all(v.dtype == np.float32 for v in state.values())
    cfg = json.loads((tmp_path / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "IA3" and cfg["inference_mode"] is True
    assert sorted(cfg["target_modules"]) == ["fc2", "k_proj", "q_proj"] and cfg["feedforward_modules"] == ["fc2"]

    loaded = PeftModel.from_pretrained(opt(), tmp_path)
    assert not any(p.requires_grad for p in loaded.parameters())
    np.testing.assert_array_equal(logits(loaded), logits(pm))


# -- interop with adapters saved by the real peft ----------------------------------------------------------
def load_case(case, is_trainable=False):
    cfg = json.loads((PEFT / case / "adapter_config.json").read_text())
    base = _auto_for_task(cfg["task_type"]).from_pretrained(cfg["base_model_name_or_path"])
    return PeftModel.from_pretrained(base, PEFT / case, is_trainable=is_trainable)


@pytest.mark.parametrize("case", IA3_CASES)
def test_peft_adapter_gives_peft_logits(case):
    ref = dict(np.load(PEFT / case / "reference.npz"))
    model = load_case(case)
    kw = dict(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"])
    if "decoder_input_ids" in ref:
        kw["decoder_input_ids"] = ref["decoder_input_ids"]
    with tp.no_grad():
        got = model(**kw).logits.detach().numpy()
    want = ref["logits"]
    if got.ndim == 3 and "decoder_input_ids" not in ref:  # decoder-only: the padded positions are not compared
        real = ref["attention_mask"].astype(bool)
        got, want = got[real], want[real]
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("case", IA3_CASES)
def test_same_state_dict_keys_and_counts_as_peft(case, capsys):
    assert sorted(load_case(case).state_dict()) == sorted(json.loads((PEFT / case / "keys.json").read_text()))
    load_case(case, is_trainable=True).print_trainable_parameters()
    counts = json.loads((PEFT / "counts.json").read_text())["cases"][case]
    assert capsys.readouterr().out.strip() == counts["line"]


# -- live parity with peft ---------------------------------------------------------------------------------
PARITY = {
    "opt": ("CAUSAL_LM", {}),
    "gpt2": ("CAUSAL_LM", {}),
    "llama": ("CAUSAL_LM", {}),
    "t5": ("SEQ_2_SEQ_LM", {}),
    "mt5": ("SEQ_2_SEQ_LM", dict(target_modules=["k", "v", "wi_1", "wo"], feedforward_modules=["wo"])),
    "bert": ("SEQ_CLS", {}),
}


def _torch_auto(transformers, task):
    return {"CAUSAL_LM": transformers.AutoModelForCausalLM, "SEQ_CLS": transformers.AutoModelForSequenceClassification,
            "SEQ_2_SEQ_LM": transformers.AutoModelForSeq2SeqLM}[task]


@pytest.mark.parity
@pytest.mark.parametrize("arch", sorted(PARITY))
def test_trainable_counts_equal_peft_live(arch):
    import torch  # noqa: F401
    import peft
    import transformers
    task, options = PARITY[arch]
    base_dir = f"{FIX}/{arch}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peft.get_peft_model(_torch_auto(transformers, task).from_pretrained(base_dir),
                                     peft.IA3Config(task_type=task, **options))
        ours = get_peft_model(_auto_for_task(task).from_pretrained(base_dir), IA3Config(task_type=task, **options))
    assert ours.get_nb_trainable_parameters() == theirs.get_nb_trainable_parameters()


@pytest.mark.parity
@pytest.mark.parametrize("arch", sorted(PARITY))
def test_adapter_saved_here_loads_in_peft(arch, tmp_path):
    import torch
    import peft
    import transformers
    task, options = PARITY[arch]
    base_dir = f"{FIX}/{arch}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = get_peft_model(_auto_for_task(task).from_pretrained(base_dir), IA3Config(task_type=task, **options))
    perturb(ours, scale=1.0)
    ours.save_pretrained(tmp_path)
    theirs = peft.PeftModel.from_pretrained(_torch_auto(transformers, task).from_pretrained(base_dir),
                                            str(tmp_path)).eval()
    ids = np.array([[5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 0, 0]])
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    kw = dict(input_ids=ids, attention_mask=mask)
    if task == "SEQ_2_SEQ_LM":
        kw["decoder_input_ids"] = np.array([[0, 5, 6], [0, 7, 8]])
    with torch.no_grad():
        want = theirs(**{k: torch.tensor(v) for k, v in kw.items()}).logits.detach().numpy()
    ours.eval()
    with tp.no_grad():
        got = ours(**kw).logits.detach().numpy()
    if got.ndim == 3 and task == "CAUSAL_LM":
        got, want = got[mask.astype(bool)], want[mask.astype(bool)]
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
