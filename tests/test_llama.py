"""tinypeft.models.llama against transformers' LlamaForCausalLM.

Default tests compare with outputs transformers produced for the tiny grouped-query fixture model
(tests/fixtures/make_fixtures.py: logits on a right-padded batch, the loss, every gradient, greedy
generations from left-padded prompts); `-m parity` tests build other configurations live.
"""
from pathlib import Path

import numpy as np
import pytest

from tinypeft import Tensor
from tinypeft.testing import assert_close_to_scale
from tinypeft.models.llama import (
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
    LlamaModel,
    rope_inverse_frequencies,
)

FIXTURES = Path(__file__).parent / "fixtures"
MODEL_DIR = FIXTURES / "models" / "llama"


@pytest.fixture(scope="module")
def ref():
    return dict(np.load(FIXTURES / "reference" / "llama.npz"))


@pytest.fixture(scope="module")
def model():
    return LlamaForCausalLM.from_pretrained(MODEL_DIR)


def real_positions(ref):
    return ref["attention_mask"].astype(bool)  # [B, T]


def test_config_from_checkpoint():
    config = LlamaConfig.from_pretrained(MODEL_DIR)
    assert (config.num_key_value_heads, config.head_dim, config.tie_word_embeddings) == (2, 8, False)
    assert config.rope_parameters == {"rope_type": "default", "rope_theta": 10000.0}


def test_state_dict_keys_equal_checkpoint(model):
    from safetensors.numpy import load_file

    assert sorted(model.state_dict()) == sorted(load_file(MODEL_DIR / "model.safetensors"))
    assert not any("inv_freq" in k for k in model.state_dict())
    assert model.loading_info == {"missing_keys": [], "unexpected_keys": []}


def test_logits_match_reference(model, ref):
    out = model(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"])
    real = real_positions(ref)
    assert_close_to_scale(out.logits.data[real], ref["logits"][real])


def test_loss_and_gradients_match_reference(ref):
    model = LlamaForCausalLM.from_pretrained(MODEL_DIR)
    out = model(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"], labels=ref["labels"])
    np.testing.assert_allclose(out.loss.item(), ref["loss"], rtol=1e-5)
    out.loss.backward()
    params = dict(model.named_parameters())
    names = [k[len("grad."):] for k in ref if k.startswith("grad.")]
    assert {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.norm.weight"} <= set(names)
    for name in names:
        want, got = ref["grad." + name], params[name].grad.data
        rel = np.abs(got - want).max() / np.abs(want).max()
        assert rel < 1e-4, f"{name}: relative error {rel:.2e}"


def test_greedy_generate_left_padded_matches_reference(model, ref):
    cfg = model.config
    out = model.generate(input_ids=ref["gen_input_ids"], attention_mask=ref["gen_attention_mask"],
                         max_new_tokens=8, pad_token_id=cfg.pad_token_id, eos_token_id=cfg.eos_token_id)
    np.testing.assert_array_equal(out.data, ref["gen_output"])


def test_generate_with_and_without_cache_agree(model, ref):
    kw = dict(input_ids=ref["gen_input_ids"], attention_mask=ref["gen_attention_mask"], max_new_tokens=6,
              eos_token_id=-1)  # never stop early, so every step is compared
    np.testing.assert_array_equal(model.generate(use_cache=True, **kw).data,
                                  model.generate(use_cache=False, **kw).data)


def test_cache_continues_the_sequence(model, ref):
    """Running N tokens, then the rest with their keys/values as past_key_values, gives the full run's logits
    (the path prefix tuning takes, with virtual tokens in the cache)."""
    ids, mask = ref["input_ids"][:1], ref["attention_mask"][:1]
    full = model(input_ids=ids, attention_mask=mask).logits.data
    first = model(input_ids=ids[:, :3], attention_mask=mask[:, :3], use_cache=True)
    k, v = first.past_key_values[0]
    assert len(first.past_key_values) == 2 and k.shape == v.shape == (1, 2, 3, 8)  # [B, H_kv, T, hd]
    rest = model(input_ids=ids[:, 3:], attention_mask=mask, past_key_values=first.past_key_values)
    np.testing.assert_allclose(rest.logits.data, full[:, 3:], atol=1e-5)


def test_inputs_embeds_equal_input_ids(model, ref):
    ids, mask = ref["input_ids"], ref["attention_mask"]
    a = model(input_ids=ids, attention_mask=mask).logits.data
    b = model(inputs_embeds=model.get_input_embeddings()(ids), attention_mask=mask).logits.data
    np.testing.assert_array_equal(a, b)


def test_base_model_and_sequence_classifier_load_the_causal_checkpoint(ref):
    base = LlamaModel.from_pretrained(MODEL_DIR)
    assert base.loading_info["missing_keys"] == [] and base.loading_info["unexpected_keys"] == ["lm_head.weight"]
    clf = LlamaForSequenceClassification.from_pretrained(MODEL_DIR)
    assert clf.loading_info["missing_keys"] == ["score.weight"]
    out = clf(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"], labels=np.array([0, 1, 1]))
    assert out.logits.shape == (3, 2) and np.isfinite(out.loss.item())


def test_rope_config_formats():
    old = LlamaConfig(rope_theta=500000.0, rope_scaling={"type": "linear", "factor": 2.0})
    assert old.rope_parameters == {"rope_type": "linear", "factor": 2.0, "rope_theta": 500000.0}
    new = LlamaConfig(rope_parameters={"rope_type": "default", "rope_theta": 1e6})
    assert new.rope_theta == 1e6
    dynamic = LlamaConfig(hidden_size=32, num_attention_heads=4, rope_scaling={"rope_type": "dynamic", "factor": 2.0})
    with pytest.raises(NotImplementedError, match="dynamic"):
        rope_inverse_frequencies(dynamic)


def test_rotary_frequencies_are_theta_powers():
    config = LlamaConfig(hidden_size=32, num_attention_heads=4, rope_theta=10000.0)
    inv_freq, scaling = rope_inverse_frequencies(config)
    np.testing.assert_allclose(inv_freq, 10000.0 ** (-np.arange(0, 8, 2) / 8), rtol=1e-6)
    assert inv_freq.dtype == np.float32 and scaling == 1.0


def test_from_config_initialises_untied_and_generates():
    config = LlamaConfig(vocab_size=50, hidden_size=16, num_attention_heads=4, num_key_value_heads=2,
                         num_hidden_layers=1, intermediate_size=24, pad_token_id=0)
    model = LlamaForCausalLM.from_config(config)
    assert model.lm_head.weight is not model.model.embed_tokens.weight  # tie_word_embeddings=False
    assert not model.model.embed_tokens.weight.data[0].any()  # the padding row starts at zero
    assert model.model.layers[0].self_attn.k_proj.weight.shape == (2 * 4, 16)  # [H_kv * hd, D]
    assert model.generate(input_ids=np.array([[3, 4, 5]]), max_new_tokens=3).shape == (1, 6)


# ----------------------------------------------------------------------------- live against transformers

def _torch_pair(tmp_path, task="causal", **overrides):
    import torch
    import transformers
    torch.manual_seed(0)
    kw = dict(vocab_size=64, hidden_size=32, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2,
              intermediate_size=48, max_position_embeddings=64, initializer_range=0.1, pad_token_id=1,
              bos_token_id=0, eos_token_id=0)
    kw.update(overrides)
    config = transformers.LlamaConfig(**kw)
    cls = {"causal": transformers.LlamaForCausalLM, "seq_cls": transformers.LlamaForSequenceClassification}[task]
    theirs = cls._from_config(config, attn_implementation="eager").eval()
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    theirs.save_pretrained(tmp_path)
    ours = {"causal": LlamaForCausalLM, "seq_cls": LlamaForSequenceClassification}[task].from_pretrained(tmp_path)
    return torch, theirs, ours


def _padded_batch():
    rng = np.random.default_rng(0)
    ids = rng.integers(2, 64, (3, 9))
    mask = np.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, :3] = 0  # one left-padded row
    ids[mask == 0] = 1
    return ids, mask


@pytest.mark.parity
@pytest.mark.parametrize("overrides", [
    {},
    {"num_key_value_heads": 4, "attention_bias": True, "mlp_bias": True},
    {"num_key_value_heads": 1, "head_dim": 16},
    {"rope_scaling": {"rope_type": "linear", "factor": 4.0}, "rope_theta": 500.0},
    {"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 32}},
    {"tie_word_embeddings": True, "hidden_act": "gelu"},
], ids=["gqa", "mha-bias", "mqa-head_dim", "rope-linear", "rope-llama3", "tied-gelu"])
def test_causal_lm_matches_transformers(tmp_path, overrides):
    torch, theirs, ours = _torch_pair(tmp_path, **overrides)
    ids, mask = _padded_batch()
    labels = np.where(mask == 1, ids, -100)
    # a left-padded row's first token is predicted from a pad position, whose output is
    # implementation-defined (eager, sdpa and tinypeft mask a keyless row differently): not compared
    labels[np.arange(len(ids)), mask.argmax(1)] = -100
    want = theirs(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), labels=torch.tensor(labels))
    got = ours(input_ids=ids, attention_mask=mask, labels=labels)
    real = mask.astype(bool)
    assert_close_to_scale(got.logits.data[real], want.logits.detach().numpy()[real])
    np.testing.assert_allclose(got.loss.item(), want.loss.item(), rtol=1e-5)
    want.loss.backward()
    got.loss.backward()
    params = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        w, g = p.grad.numpy(), params[name].grad.data
        assert np.abs(g - w).max() <= 1e-4 * np.abs(w).max() + 1e-7, name
    prompts, pmask = ids[1:, :6].copy(), np.ones((2, 6), dtype=np.int64)
    pmask[1, :3] = 0
    with torch.no_grad():
        gen = theirs.generate(input_ids=torch.tensor(prompts), attention_mask=torch.tensor(pmask), max_new_tokens=6,
                              do_sample=False, pad_token_id=1, eos_token_id=0)
    np.testing.assert_array_equal(ours.generate(input_ids=prompts, attention_mask=pmask, max_new_tokens=6).data,
                                  gen.numpy())


@pytest.mark.parity
def test_sequence_classification_matches_transformers(tmp_path):
    torch, theirs, ours = _torch_pair(tmp_path, task="seq_cls", num_labels=3)
    ids, mask = _padded_batch()
    labels = np.array([0, 2, 1])
    want = theirs(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), labels=torch.tensor(labels))
    got = ours(input_ids=ids, attention_mask=mask, labels=labels)
    np.testing.assert_allclose(got.logits.data, want.logits.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(got.loss.item(), want.loss.item(), rtol=1e-5)
    assert isinstance(got.logits, Tensor)


@pytest.mark.parity
def test_virtual_tokens_in_the_cache_match_transformers(model):
    """Prefix tuning's path: N virtual keys/values per layer as past_key_values, the mask covering them."""
    import torch
    import transformers
    from tinypeft import Tensor

    theirs = transformers.AutoModelForCausalLM.from_pretrained(MODEL_DIR, attn_implementation="eager").eval()
    rng = np.random.default_rng(0)
    B, N, hd = 2, 3, 8
    ids = rng.integers(2, 100, (B, 5))
    mask = np.ones((B, 5), dtype=np.int64)
    mask[1, 3:] = 0
    past = [tuple(rng.standard_normal((B, 2, N, hd)).astype(np.float32) for _ in "kv") for _ in range(2)]
    full_mask = np.concatenate([np.ones((B, N), dtype=np.int64), mask], axis=1)  # [B, N + T]
    cache = transformers.DynamicCache(ddp_cache_data=[(torch.tensor(k), torch.tensor(v)) for k, v in past],
                                      config=theirs.config)
    with torch.no_grad():
        want = theirs(input_ids=torch.tensor(ids), attention_mask=torch.tensor(full_mask), cache=cache).logits
    got = model(input_ids=ids, attention_mask=full_mask,
                past_key_values=tuple((Tensor(k), Tensor(v)) for k, v in past)).logits
    real = mask.astype(bool)
    assert_close_to_scale(got.data[real], want.numpy()[real])
