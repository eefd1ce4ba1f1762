"""LoRA (and DoRA) on quantized bases: PEFT's semantics checked against a float model that holds the same
dequantized weights; prepare_model_for_kbit_training; merging with re-quantization; the adapter file."""
import json

import numpy as np
import pytest

import tinypeft as tp
from tinypeft import BitsAndBytesConfig, LoraConfig, get_peft_model, prepare_model_for_kbit_training
from tinypeft.peft.tuners.lora import bnb
from tinypeft.quantization import Int8Params, Linear4bit, Linear8bitLt, Params4bit

LLAMA = "tests/fixtures/models/llama"
CONFIGS = {"nf4": dict(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True),
           "int8": dict(load_in_8bit=True)}
IDS = np.array([[3, 7, 1, 9, 4, 2, 8, 5], [5, 5, 6, 7, 8, 1, 2, 2]])


def quantized_and_twin(kind):
    """A quantized llama, and a float llama whose linear weights are the quantized ones, dequantized."""
    q = tp.AutoModelForCausalLM.from_pretrained(LLAMA, quantization_config=BitsAndBytesConfig(**CONFIGS[kind]))
    f = tp.AutoModelForCausalLM.from_pretrained(LLAMA)
    for name, m in q.named_modules():
        if isinstance(m, (Linear4bit, Linear8bitLt)):
            f.get_submodule(name).weight.data = m.weight.dequantize()
    return q, f


def lora_pair(kind, **lora):
    q, f = quantized_and_twin(kind)
    cfg = dict(r=4, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM", **lora)
    tp.manual_seed(0)
    pq = get_peft_model(q, LoraConfig(**cfg))
    tp.manual_seed(0)
    pf = get_peft_model(f, LoraConfig(**cfg))
    return pq, pf


@pytest.mark.parametrize("kind", ["nf4", "int8"])
@pytest.mark.parametrize("use_dora", [False, True])
def test_lora_on_a_quantized_base_matches_lora_on_its_dequantized_twin(kind, use_dora):
    pq, pf = lora_pair(kind, use_dora=use_dora)
    layer = pq.base_model.model.model.layers[0].self_attn.q_proj
    assert isinstance(layer, bnb.Linear4bit if kind == "nf4" else bnb.Linear8bitLt)
    assert (layer.in_features, layer.out_features) == (32, 32)
    assert pq.get_nb_trainable_parameters() == pf.get_nb_trainable_parameters()  # 4-bit weights count in full
    lq, lf = pq(input_ids=IDS, labels=IDS).loss, pf(input_ids=IDS, labels=IDS).loss
    assert abs(lq.item() - lf.item()) < 1e-5
    lq.backward()
    lf.backward()
    gf = dict(pf.named_parameters())
    for n, p in pq.named_parameters():
        if p.requires_grad:
            assert np.allclose(p.grad.numpy(), gf[n].grad.numpy(), rtol=1e-4, atol=1e-6), n
        else:
            assert p.grad is None


def test_all_linear_adapts_quantized_layers_but_not_the_head():
    pq, _ = lora_pair("nf4")
    adapted = [n for n, m in pq.named_modules() if isinstance(m, bnb.Linear4bit)]
    assert len(adapted) == 7 * 2 and not any("lm_head" in n for n in adapted)


@pytest.mark.parametrize("kind", ["nf4", "int8"])
def test_merge_and_unload_requantizes_with_peft_warning(kind):
    pq, _ = lora_pair(kind)
    for m in pq.modules():  # a realistic adapter: small next to the weight
        if isinstance(m, bnb._QuantizedLoraLayer):
            m.lora_B["default"].weight.data *= 0.01
    layer = pq.base_model.model.model.layers[1].mlp.down_proj
    expected = layer.base_layer.weight.dequantize() + layer.get_delta_weight("default")
    with tp.no_grad():
        before = pq(input_ids=IDS).logits.numpy()
    bits = 4 if kind == "nf4" else 8
    with pytest.warns(UserWarning, match=f"Merge lora module to {bits}-bit linear may get different generations"):
        merged = pq.merge_and_unload()
    new = merged.model.layers[1].mlp.down_proj
    assert isinstance(new, Linear4bit if kind == "nf4" else Linear8bitLt)
    ref = Params4bit(expected, quant_type="nf4", compress_statistics=True) if kind == "nf4" else Int8Params(expected)
    assert np.array_equal(new.weight.dequantize(), ref.dequantize())  # W + sBA, quantized again
    with tp.no_grad():
        after = merged(input_ids=IDS).logits.numpy()
    assert np.abs(after - before).max() < (0.2 if kind == "nf4" else 0.05) * np.abs(before).max()


def test_prepare_model_for_kbit_training_freezes_and_turns_checkpointing_on():
    q = tp.AutoModelForCausalLM.from_pretrained(LLAMA, quantization_config=BitsAndBytesConfig(**CONFIGS["nf4"]))
    q.model.norm.weight.data = q.model.norm.weight.data.astype(np.float16)
    q = prepare_model_for_kbit_training(q)
    assert not any(p.requires_grad for p in q.parameters())
    assert q.model.norm.weight.dtype == np.float32 and q.is_gradient_checkpointing
    q.train()
    assert q.model.embed_tokens(IDS).requires_grad  # the input-grad hook


def test_qlora_training_lowers_the_loss_and_checkpointing_changes_nothing():
    def run(checkpointing):
        q = tp.AutoModelForCausalLM.from_pretrained(LLAMA, quantization_config=BitsAndBytesConfig(**CONFIGS["nf4"]))
        q = prepare_model_for_kbit_training(q, use_gradient_checkpointing=checkpointing)
        tp.manual_seed(0)
        model = get_peft_model(q, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", lora_dropout=0.1,
                                             task_type="CAUSAL_LM"))
        model.train()
        opt = tp.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        tp.manual_seed(1)
        losses = []
        for _ in range(4):
            loss = model(input_ids=IDS, labels=IDS).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
            losses.append(loss.item())
        return losses

    plain, ckpt = run(False), run(True)
    assert plain[-1] < plain[0] - 0.5
    assert plain == ckpt  # bit for bit, dropout included


def test_adapter_trained_on_a_4bit_base_saves_in_peft_format(tmp_path):
    pq, pf = lora_pair("nf4")
    pq.save_pretrained(tmp_path / "q")
    pf.save_pretrained(tmp_path / "f")
    from tinypeft.checkpoint_io import load_file

    a, b = load_file(tmp_path / "q" / "adapter_model.safetensors"), load_file(tmp_path / "f" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    cfg = json.loads((tmp_path / "q" / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and cfg["r"] == 4
    q2 = tp.AutoModelForCausalLM.from_pretrained(LLAMA, quantization_config=BitsAndBytesConfig(**CONFIGS["nf4"]))
    loaded = tp.PeftModel.from_pretrained(q2, tmp_path / "q")
    with tp.no_grad():
        assert np.array_equal(loaded(input_ids=IDS).logits.numpy(), pq(input_ids=IDS).logits.numpy())


@pytest.mark.parametrize("kind", ["nf4", "int8"])
def test_gpt2_conv1d_layers_quantize_transposed_and_take_lora(kind):
    q = tp.AutoModelForCausalLM.from_pretrained("tests/fixtures/models/gpt2",
                                                quantization_config=BitsAndBytesConfig(**CONFIGS[kind]))
    f = tp.AutoModelForCausalLM.from_pretrained("tests/fixtures/models/gpt2")
    c_attn = q.transformer.h[0].attn.c_attn
    assert c_attn.weight.quant_shape == (f.transformer.h[0].attn.c_attn.weight.shape[1], 32)
    model = get_peft_model(q, LoraConfig(r=2, target_modules=["c_attn"], task_type="CAUSAL_LM"))
    lA = model.base_model.model.transformer.h[0].attn.c_attn.lora_A["default"].weight
    assert lA.shape == (2, 32)
    model(input_ids=IDS, labels=IDS).loss.backward()
    assert lA.grad is not None


def test_training_a_purely_quantized_model_is_refused():
    q = tp.AutoModelForCausalLM.from_pretrained(LLAMA, quantization_config=BitsAndBytesConfig(**CONFIGS["nf4"]))
    with pytest.raises(ValueError, match="You cannot perform fine-tuning on purely quantized models"):
        tp.Trainer(model=q, args=tp.TrainingArguments(output_dir="unused"))


@pytest.mark.parity
def test_adapter_trained_on_a_4bit_base_loads_in_peft(tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    pq, _ = lora_pair("nf4")
    pq.save_pretrained(tmp_path)
    base = AutoModelForCausalLM.from_pretrained(LLAMA, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(tmp_path))
    sd = model.state_dict()
    ours = dict(pq.named_parameters())
    n = 0
    for k, v in ours.items():
        if "lora_" in k:
            assert np.array_equal(sd[k].numpy(), v.data), k
            n += 1
    assert n == 28


@pytest.mark.parametrize("second_dora", [False, True])
def test_two_active_adapters_on_a_quantized_base(second_dora):
    pq, pf = lora_pair("nf4")
    cfg = dict(r=2, target_modules=["q_proj", "down_proj"], init_lora_weights=False, use_dora=second_dora)
    for model in (pq, pf):
        tp.manual_seed(3)
        model.add_adapter("second", LoraConfig(**cfg))
        model.base_model.set_adapter(["default", "second"])
    lq, lf = pq(input_ids=IDS, labels=IDS).loss, pf(input_ids=IDS, labels=IDS).loss
    assert abs(lq.item() - lf.item()) < 1e-5
    lq.backward()
    lf.backward()
    gf = dict(pf.named_parameters())
    trained = [n for n, p in pq.named_parameters() if p.requires_grad]
    assert any(".second." in n for n in trained)
    for n in trained:
        assert np.allclose(dict(pq.named_parameters())[n].grad.numpy(), gf[n].grad.numpy(), rtol=1e-4, atol=1e-6), n


@pytest.mark.parametrize("kind", ["nf4", "int8"])
def test_ia3_on_a_quantized_base_matches_its_dequantized_twin_and_merges(kind):
    from tinypeft import IA3Config
    from tinypeft.peft.tuners.ia3 import bnb as ia3_bnb

    q, f = quantized_and_twin(kind)
    models = []
    for base in (q, f):
        tp.manual_seed(0)
        models.append(get_peft_model(base, IA3Config(task_type="CAUSAL_LM", init_ia3_weights=False)))
    pq, pf = models
    assert isinstance(pq.base_model.model.model.layers[0].mlp.down_proj, ia3_bnb._QuantizedIA3Layer)
    lq, lf = pq(input_ids=IDS, labels=IDS).loss, pf(input_ids=IDS, labels=IDS).loss
    assert abs(lq.item() - lf.item()) < 1e-5
    lq.backward()
    lf.backward()
    gf = dict(pf.named_parameters())
    for n, p in pq.named_parameters():
        if p.requires_grad:
            assert np.allclose(p.grad.numpy(), gf[n].grad.numpy(), rtol=1e-4, atol=1e-6), n
    with tp.no_grad():
        before = pq(input_ids=IDS).logits.numpy()
    with pytest.warns(UserWarning, match="Merge ia3 module to"):
        merged = pq.merge_and_unload()
    with tp.no_grad():
        after = merged(input_ids=IDS).logits.numpy()
    assert isinstance(merged.model.layers[0].mlp.down_proj, Linear4bit if kind == "nf4" else Linear8bitLt)
    assert np.abs(after - before).max() < 0.2 * np.abs(before).max()
