"""LoRA behind PEFT's API: every LoraConfig option, adapter management, merging, and the saved files."""
import json
import math
import tracemalloc
import warnings

import numpy as np
import pytest

import tinypeft as tp
from tinypeft import nn
from tinypeft.checkpoint_io import read_header
from tinypeft.models import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification
from tinypeft.peft import LoraConfig, PeftModel, TaskType, get_peft_model
from tinypeft.peft.tuners.lora.layer import LoraLayer

FIX = "tests/fixtures/models"
IDS = np.array([[5, 6, 7, 8, 9], [10, 11, 12, 0, 0]])
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])


def opt():
    return AutoModelForCausalLM.from_pretrained(f"{FIX}/opt")


def lora_layers(model):
    return {n: m for n, m in model.named_modules() if isinstance(m, LoraLayer)}


def logits(model, **kw):
    with tp.no_grad():
        return model(input_ids=IDS, attention_mask=MASK, **kw).logits.numpy()


def perturb(model, seed=0):
    """Random B so the adapter changes the outputs (a fresh B = 0 adapter is a no-op)."""
    rng = np.random.default_rng(seed)
    for n, p in model.named_parameters():
        if "lora_" in n:
            p.data = rng.standard_normal(p.shape).astype(np.float32) * 0.1


def test_defaults_match_peft():
    c = LoraConfig()
    assert (c.r, c.lora_alpha, c.lora_dropout, c.bias, c.fan_in_fan_out, c.init_lora_weights) == (8, 8, 0.0, "none", False, True)
    assert (c.use_rslora, c.use_dora, c.lora_bias, c.rank_pattern, c.alpha_pattern) == (False, False, False, {}, {})
    assert len(c.to_dict()) == 41 and c.peft_type == "LORA"


def test_fresh_adapter_is_a_no_op_and_only_lora_params_train(capsys):
    model = opt()
    before = logits(model)
    pm = get_peft_model(model, LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=8))
    assert type(pm).__name__ == "PeftModelForCausalLM"
    np.testing.assert_array_equal(logits(pm), before)
    names = [n for n, p in pm.named_parameters() if p.requires_grad]
    assert names and all(".lora_A.default." in n or ".lora_B.default." in n for n in names)
    # default targets for OPT are q_proj and v_proj: 2 layers x 2 modules x (A [4, 32] + B [32, 4])
    trainable, total = pm.get_nb_trainable_parameters()
    assert trainable == 2 * 2 * (4 * 32 + 32 * 4)
    pm.print_trainable_parameters()
    line = capsys.readouterr().out.strip()
    assert line == f"trainable params: {trainable:,d} || all params: {total:,d} || trainable%: {100 * trainable / total:.4f}"
    assert pm.peft_config["default"].base_model_name_or_path == f"{FIX}/opt"


def test_scaling_alpha_over_r_and_rslora():
    pm = get_peft_model(opt(), LoraConfig(r=4, lora_alpha=16))
    assert all(m.scaling["default"] == 4.0 for m in lora_layers(pm).values())
    pm = get_peft_model(opt(), LoraConfig(r=4, lora_alpha=16, use_rslora=True))
    assert all(m.scaling["default"] == 8.0 for m in lora_layers(pm).values())


def test_forward_is_base_plus_scaled_low_rank_update():
    model = opt()
    pm = get_peft_model(model, LoraConfig(r=2, lora_alpha=6, target_modules=["fc1"]))
    perturb(pm)
    layer = pm.base_model.model.model.decoder.layers[0].fc1
    x = tp.randn(3, 32)
    W, b = layer.base_layer.weight.detach().numpy(), layer.base_layer.bias.detach().numpy()
    A, B = layer.lora_A["default"].weight.detach().numpy(), layer.lora_B["default"].weight.detach().numpy()
    want = x.numpy() @ W.T + b + 3.0 * (x.numpy() @ A.T) @ B.T
    np.testing.assert_allclose(layer(x).detach().numpy(), want, rtol=1e-5, atol=1e-5)


def test_target_modules_list_regex_all_linear_and_not_found():
    assert set(lora_layers(get_peft_model(opt(), LoraConfig(target_modules=["q_proj", "fc2"])))) == {
        f"base_model.model.model.decoder.layers.{i}.{m}" for i in (0, 1) for m in ("self_attn.q_proj", "fc2")}
    regex = get_peft_model(opt(), LoraConfig(target_modules=r".*layers\.1\.self_attn\.(k|v)_proj"))
    assert sorted(lora_layers(regex)) == [f"base_model.model.model.decoder.layers.1.self_attn.{m}" for m in ("k_proj", "v_proj")]
    every = get_peft_model(opt(), LoraConfig(target_modules="all-linear"))
    names = set(lora_layers(every))
    assert len(names) == 2 * 6 and not any("lm_head" in n for n in names)  # q k v out fc1 fc2, never the head
    with pytest.raises(ValueError, match="not found in the base model"):
        get_peft_model(opt(), LoraConfig(target_modules=["nonexistent"]))


def test_default_targets_per_model_type():
    gpt2 = get_peft_model(AutoModelForCausalLM.from_pretrained(f"{FIX}/gpt2"), LoraConfig())
    assert sorted(n.rsplit(".", 1)[1] for n in lora_layers(gpt2)) == ["c_attn", "c_attn"]
    t5 = get_peft_model(AutoModelForSeq2SeqLM.from_pretrained(f"{FIX}/t5"), LoraConfig(task_type="SEQ_2_SEQ_LM"))
    assert {n.rsplit(".", 1)[1] for n in lora_layers(t5)} == {"q", "v"}
    assert len(lora_layers(t5)) == 2 * 2 + 2 * 2 * 2  # encoder self-attn; decoder self- and cross-attn


def test_fan_in_fan_out_for_gpt2_conv1d():
    model = AutoModelForCausalLM.from_pretrained(f"{FIX}/gpt2")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        pm = get_peft_model(model, LoraConfig(r=4, init_lora_weights=False))
    assert any("fan_in_fan_out" in str(x.message) for x in w)
    assert pm.peft_config["default"].fan_in_fan_out is True
    layer = pm.base_model.model.transformer.h[0].attn.c_attn
    assert layer.lora_A["default"].weight.shape == (4, 32) and layer.lora_B["default"].weight.shape == (96, 4)
    x = tp.randn(2, 32)
    W, b = layer.base_layer.weight.detach().numpy(), layer.base_layer.bias.detach().numpy()  # Conv1D: [in, out]
    A, B = layer.lora_A["default"].weight.detach().numpy(), layer.lora_B["default"].weight.detach().numpy()
    want = x.numpy() @ W + b + layer.scaling["default"] * (x.numpy() @ A.T) @ B.T
    np.testing.assert_allclose(layer(x).detach().numpy(), want, rtol=1e-5, atol=1e-5)
    merged_before = logits(pm)
    pm.merge_adapter()
    np.testing.assert_allclose(logits(pm), merged_before, atol=1e-5)


def test_bias_options():
    def trainable_biases(bias):
        pm = get_peft_model(opt(), LoraConfig(bias=bias))
        return sorted(n for n, p in pm.named_parameters() if p.requires_grad and n.endswith("bias"))

    assert trainable_biases("none") == []
    only = trainable_biases("lora_only")
    assert only and all(n.endswith("base_layer.bias") for n in only) and len(only) == 4
    every = trainable_biases("all")
    assert len(every) > len(only) and any("fc1.bias" in n for n in every)


def test_modules_to_save_for_sequence_classification():
    model = AutoModelForSequenceClassification.from_pretrained(f"{FIX}/bert")
    pm = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=2))
    assert pm.peft_config["default"].modules_to_save == ["classifier", "score"]
    names = [n for n, p in pm.named_parameters() if p.requires_grad]
    assert "base_model.model.classifier.modules_to_save.default.weight" in names
    assert "base_model.model.classifier.original_module.weight" not in names
    out = pm(input_ids=IDS, attention_mask=MASK, labels=np.array([0, 1]))
    out.loss.backward()
    assert pm.base_model.model.classifier.modules_to_save["default"].weight.grad is not None
    assert pm.base_model.model.classifier.original_module.weight.grad is None


def test_dropout_acts_only_in_training():
    pm = get_peft_model(opt(), LoraConfig(lora_dropout=0.5, init_lora_weights=False))
    pm.eval()
    a, b = logits(pm), logits(pm)
    np.testing.assert_array_equal(a, b)
    pm.train()
    tp.manual_seed(0)
    c = logits(pm)
    assert not np.allclose(a, c)


def test_dora_starts_as_a_no_op_and_trains_magnitude():
    model = opt()
    before = logits(model)
    pm = get_peft_model(model, LoraConfig(use_dora=True, r=2, target_modules=["q_proj", "fc1"]))
    np.testing.assert_allclose(logits(pm), before, atol=1e-5)
    names = [n for n, p in pm.named_parameters() if p.requires_grad]
    assert any(n.endswith("lora_magnitude_vector.default.weight") for n in names)
    loss = pm(input_ids=IDS, attention_mask=MASK, labels=IDS).loss
    loss.backward()
    layer = pm.base_model.model.model.decoder.layers[0].fc1
    assert layer.lora_magnitude_vector["default"].weight.grad is not None
    assert layer.base_layer.weight.grad is None


def test_init_options():
    def AB(init):
        pm = get_peft_model(opt(), LoraConfig(r=4, init_lora_weights=init, target_modules=["fc1"]))
        layer = pm.base_model.model.model.decoder.layers[0].fc1
        return layer.lora_A["default"].weight.detach().numpy(), layer.lora_B["default"].weight.detach().numpy()

    A, B = AB(True)
    assert np.all(B == 0) and np.abs(A).max() <= 1 / math.sqrt(32) and A.std() > 0  # U(-1/sqrt(in), 1/sqrt(in))
    A, B = AB("gaussian")
    assert np.all(B == 0) and 0.1 < A.std() < 0.45  # N(0, 1/r) std 0.25
    A, B = AB(False)
    assert np.abs(B).max() > 0


def test_layers_to_transform_rank_pattern_alpha_pattern():
    pm = get_peft_model(opt(), LoraConfig(r=4, lora_alpha=8, layers_to_transform=[1],
                                          rank_pattern={"v_proj": 2}, alpha_pattern={r"layers\.1\.self_attn\.q_proj": 32}))
    layers = lora_layers(pm)
    assert sorted(layers) == [f"base_model.model.model.decoder.layers.1.self_attn.{m}" for m in ("q_proj", "v_proj")]
    q = layers["base_model.model.model.decoder.layers.1.self_attn.q_proj"]
    v = layers["base_model.model.model.decoder.layers.1.self_attn.v_proj"]
    assert (q.r["default"], q.scaling["default"]) == (4, 8.0)
    assert (v.r["default"], v.scaling["default"]) == (2, 4.0)
    assert v.lora_A["default"].weight.shape == (2, 32)


def test_training_never_forms_w_plus_ba_and_gives_no_base_gradient(monkeypatch):
    pm = get_peft_model(opt(), LoraConfig(r=4, init_lora_weights=False))
    monkeypatch.setattr(LoraLayer, "get_delta_weight", lambda *a: pytest.fail("B @ A formed in training"))
    pm.train()
    loss = pm(input_ids=IDS, attention_mask=MASK, labels=IDS).loss
    loss.backward()
    for layer in lora_layers(pm).values():
        assert layer.base_layer.weight.grad is None
        assert layer.lora_A["default"].weight.grad is not None and layer.lora_B["default"].weight.grad is not None


def test_training_reduces_the_loss():
    tp.manual_seed(0)
    pm = get_peft_model(opt(), LoraConfig(r=4, lora_alpha=16, target_modules="all-linear"))
    opt_ = tp.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(15):
        loss = pm(input_ids=IDS, attention_mask=MASK, labels=np.where(MASK == 1, IDS, -100)).loss
        opt_.zero_grad()
        loss.backward()
        opt_.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_merge_unmerge_round_trip_and_merged_equals_unmerged():
    pm = get_peft_model(opt(), LoraConfig(r=4, target_modules="all-linear", use_rslora=True))
    perturb(pm)
    weights = {n: p.numpy().copy() for n, p in pm.named_parameters() if "base_layer.weight" in n}
    unmerged = logits(pm)
    pm.merge_adapter()
    assert all(layer.merged for layer in lora_layers(pm).values())
    np.testing.assert_allclose(logits(pm), unmerged, atol=1e-5)
    pm.unmerge_adapter()
    for n, p in pm.named_parameters():
        if n in weights:
            np.testing.assert_allclose(p.detach().numpy(), weights[n], atol=1e-5)
    np.testing.assert_allclose(logits(pm), unmerged, atol=1e-5)


def test_dora_merge_round_trip():
    pm = get_peft_model(opt(), LoraConfig(r=2, use_dora=True, target_modules=["q_proj", "fc2"]))
    perturb(pm)
    for n, p in pm.named_parameters():
        if n.endswith("lora_magnitude_vector.default.weight"):
            p.data = np.abs(p.data) + 1.0
    w0 = pm.base_model.model.model.decoder.layers[0].fc2.base_layer.weight.detach().numpy().copy()
    unmerged = logits(pm)
    pm.merge_adapter()
    np.testing.assert_allclose(logits(pm), unmerged, atol=1e-5)
    pm.unmerge_adapter()
    np.testing.assert_allclose(pm.base_model.model.model.decoder.layers[0].fc2.base_layer.weight.detach().numpy(), w0, atol=1e-5)


def test_merge_and_unload_returns_the_plain_model():
    pm = get_peft_model(opt(), LoraConfig(r=4))
    perturb(pm)
    want = logits(pm)
    plain = pm.merge_and_unload()
    assert type(plain).__name__ == "OPTForCausalLM" and not lora_layers(plain)
    np.testing.assert_allclose(logits(plain), want, atol=1e-5)
    assert "model.decoder.layers.0.self_attn.q_proj.weight" in plain.state_dict()


def test_unload_gives_back_the_original_weights():
    model = opt()
    before = logits(model)
    pm = get_peft_model(model, LoraConfig(r=4))
    perturb(pm)
    np.testing.assert_allclose(logits(pm.unload()), before, atol=0)


def test_several_adapters_set_disable_delete():
    model = opt()
    base = logits(model)
    pm = get_peft_model(model, LoraConfig(r=4))
    perturb(pm, 1)
    out_default = logits(pm)
    pm.add_adapter("other", LoraConfig(r=2, target_modules=["fc1"]))
    assert pm.active_adapter == "default"
    np.testing.assert_allclose(logits(pm), out_default, atol=0)  # the new adapter is not active
    pm.set_adapter("other")
    for n, p in pm.named_parameters():
        if ".other." in n:
            p.data = p.data + 0.1
    trainable = [n for n, p in pm.named_parameters() if p.requires_grad]
    assert trainable and all(".other." in n for n in trainable)
    out_other = logits(pm)
    assert not np.allclose(out_other, out_default)
    with pm.disable_adapter():
        np.testing.assert_allclose(logits(pm), base, atol=0)
    np.testing.assert_allclose(logits(pm), out_other, atol=0)
    pm.delete_adapter("other")
    assert list(pm.peft_config) == ["default"] and not any(".other." in n for n, _ in pm.named_parameters())
    np.testing.assert_allclose(logits(pm), out_default, atol=0)


def test_add_weighted_adapter_cat_and_linear():
    pm = get_peft_model(opt(), LoraConfig(r=2, target_modules=["q_proj"]))
    pm.add_adapter("b", LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"]))
    perturb(pm, 3)
    layer = pm.base_model.model.model.decoder.layers[0].self_attn.q_proj
    delta = {a: layer.get_delta_weight(a) for a in ("default", "b")}
    pm.add_weighted_adapter(["default", "b"], [0.7, 0.3], "cat_ab", combination_type="cat")
    assert pm.peft_config["cat_ab"].r == 4 and pm.peft_config["cat_ab"].lora_alpha == 4
    np.testing.assert_allclose(layer.get_delta_weight("cat_ab"), 0.7 * delta["default"] + 0.3 * delta["b"], atol=1e-6)
    pm.add_weighted_adapter(["default"], [2.0], "lin", combination_type="linear")
    np.testing.assert_allclose(layer.get_delta_weight("lin"), 2.0 * delta["default"], atol=1e-6)
    with pytest.raises(ValueError, match="already exists"):
        pm.add_weighted_adapter(["default"], [1.0], "lin", combination_type="linear")


def test_save_pretrained_writes_peft_files(tmp_path):
    pm = get_peft_model(opt(), LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=16, lora_dropout=0.1))
    pm.add_adapter("other", LoraConfig(task_type="CAUSAL_LM", r=2, target_modules=["fc1"]))
    pm.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "adapter_config.json", "adapter_model.safetensors", "other"]
    assert (tmp_path / "other" / "adapter_model.safetensors").is_file()
    text = (tmp_path / "adapter_config.json").read_text()
    cfg = json.loads(text)
    assert text == json.dumps(cfg, indent=2, sort_keys=True)
    assert len(cfg) == 41 and cfg["inference_mode"] is True and cfg["peft_type"] == "LORA"
    assert cfg["task_type"] == "CAUSAL_LM" and sorted(cfg["target_modules"]) == ["q_proj", "v_proj"]
    assert pm.peft_config["default"].inference_mode is False  # saving does not change the live config
    header, _ = read_header(tmp_path / "adapter_model.safetensors")
    assert header.pop("__metadata__") == {"format": "pt"}
    assert set(header) == {f"base_model.model.model.decoder.layers.{i}.self_attn.{m}_proj.lora_{ab}.weight"
                           for i in (0, 1) for m in "qv" for ab in "AB"}
    assert all(v["dtype"] == "F32" for v in header.values())
    assert header["base_model.model.model.decoder.layers.0.self_attn.q_proj.lora_A.weight"]["shape"] == [4, 32]


def test_from_pretrained_round_trip_frozen_unless_trainable(tmp_path):
    pm = get_peft_model(opt(), LoraConfig(task_type="CAUSAL_LM", r=4, use_dora=True))
    perturb(pm)
    want = logits(pm)
    pm.save_pretrained(tmp_path)
    loaded = PeftModel.from_pretrained(opt(), tmp_path)
    assert type(loaded).__name__ == "PeftModelForCausalLM"
    np.testing.assert_allclose(logits(loaded), want, atol=1e-6)
    assert not any(p.requires_grad for p in loaded.parameters())
    trainable = PeftModel.from_pretrained(opt(), tmp_path, is_trainable=True)
    assert any(p.requires_grad for p in trainable.parameters())
    from tinypeft.peft import AutoPeftModelForCausalLM, AutoPeftModelForSeq2SeqLM

    auto = AutoPeftModelForCausalLM.from_pretrained(tmp_path)
    np.testing.assert_allclose(logits(auto), want, atol=1e-6)
    with pytest.raises(ValueError, match="task_type"):
        AutoPeftModelForSeq2SeqLM.from_pretrained(tmp_path)


def test_load_adapter_adds_without_activating(tmp_path):
    pm = get_peft_model(opt(), LoraConfig(r=4))
    perturb(pm, 5)
    saved = logits(pm)
    pm.save_pretrained(tmp_path)
    fresh = get_peft_model(opt(), LoraConfig(r=4))
    before = logits(fresh)
    fresh.load_adapter(tmp_path, adapter_name="loaded")
    np.testing.assert_allclose(logits(fresh), before, atol=0)
    fresh.set_adapter("loaded")
    np.testing.assert_allclose(logits(fresh), saved, atol=1e-6)


def test_mt0_large_count_without_filling_the_weights(capsys):
    from tinypeft.models.t5 import MT5Config

    config = MT5Config(d_model=1024, d_ff=2816, num_layers=24, num_decoder_layers=24, num_heads=16, d_kv=64,
                       vocab_size=250112, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                       relative_attention_num_buckets=32)
    tracemalloc.start()
    with nn.init_empty_weights():
        model = AutoModelForSeq2SeqLM.from_config(config)
    pm = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_2_SEQ_LM, r=8, lora_alpha=32, lora_dropout=0.1))
    pm.print_trainable_parameters()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert capsys.readouterr().out.strip() == "trainable params: 2,359,296 || all params: 1,231,940,608 || trainable%: 0.1915"
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB: the 4.9 GB of weights must not be allocated"


def test_wrapping_an_empty_model_counts_without_memory_for_lora_and_ia3():
    # BERT has a padding row and IA3 asks for the weight's device: both must work on placeholders
    from tinypeft import IA3Config
    from tinypeft.models.bert import BertConfig, BertForSequenceClassification

    config = BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64)
    counts = {}
    for name, peft_config in (("lora", LoraConfig(task_type="SEQ_CLS", r=4)), ("ia3", IA3Config(task_type="SEQ_CLS"))):
        with nn.init_empty_weights():
            model = BertForSequenceClassification.from_config(config)
        counts[name] = get_peft_model(model, peft_config).get_nb_trainable_parameters()[0]
    head = 32 * 2 + 2  # the classifier copy (modules_to_save)
    assert counts["lora"] == 2 * 2 * 4 * (32 + 32) + head  # query and value in 2 layers
    # key, value [out = 32]; "output.dense" matches attention.output.dense [in = 32] and output.dense [in = 64]
    assert counts["ia3"] == 2 * (32 + 32 + 32 + 64) + head
