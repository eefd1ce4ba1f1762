"""tinypeft.models.gpt2 against transformers' GPT2LMHeadModel (stored references; `-m parity` live)."""
from pathlib import Path

import numpy as np
import pytest

import tinypeft as tp
from tinypeft.models import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification
from tinypeft.models.gpt2 import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel
from tinypeft.testing import assert_close_to_scale

FIXTURES = Path(__file__).parent / "fixtures"
MODEL_DIR = FIXTURES / "models" / "gpt2"


@pytest.fixture(scope="module")
def ref():
    return dict(np.load(FIXTURES / "reference" / "gpt2.npz"))


@pytest.fixture(scope="module")
def model():
    return AutoModelForCausalLM.from_pretrained(MODEL_DIR)


def test_auto_classes_pick_gpt2():
    config = AutoConfig.from_pretrained(MODEL_DIR)
    assert isinstance(config, GPT2Config) and config.hidden_size == config.n_embd == 32
    assert type(AutoModelForCausalLM.from_pretrained(MODEL_DIR)) is GPT2LMHeadModel


def test_module_names_and_state_dict_match_the_checkpoint(model):
    from safetensors.numpy import load_file

    ckpt = load_file(MODEL_DIR / "model.safetensors")
    names = dict(model.named_modules())
    assert "transformer.h.0.attn.c_attn" in names and "transformer.h.1.mlp.c_proj" in names
    assert set(ckpt) <= set(model.state_dict())
    # the LM head shares the embedding matrix (tied) instead of holding a copy
    assert model.lm_head.weight is model.transformer.wte.weight
    assert model.transformer.h[0].attn.c_attn.weight.shape == (32, 96)  # Conv1D: [in, out]


def test_logits_match_reference_on_a_padded_batch(model, ref):
    out = model(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"])
    real = ref["attention_mask"].astype(bool)
    assert_close_to_scale(out.logits.data[real], ref["logits"][real])


def test_loss_and_every_gradient_match_reference(ref):
    model = GPT2LMHeadModel.from_pretrained(MODEL_DIR)
    out = model(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"], labels=ref["labels"])
    np.testing.assert_allclose(out.loss.item(), ref["loss"], rtol=1e-5)
    out.loss.backward()
    params = dict(model.named_parameters())
    names = [k[len("grad."):] for k in ref if k.startswith("grad.")]
    assert {"transformer.wte.weight", "transformer.h.0.attn.c_attn.weight", "transformer.ln_f.weight"} <= set(names)
    for name in names:
        want, got = ref["grad." + name], params[name].grad.data
        scale = np.abs(want).max()
        if scale < 1e-7:  # a gradient that is exactly zero in theory (e.g. a key bias): compare absolutely
            assert np.abs(got).max() < 1e-6, name
            continue
        rel = np.abs(got - want).max() / scale
        assert rel < 1e-4, f"{name}: relative error {rel:.2e}"


def test_greedy_generate_left_padded_matches_reference(model, ref):
    out = model.generate(input_ids=ref["gen_input_ids"], attention_mask=ref["gen_attention_mask"], max_new_tokens=8)
    np.testing.assert_array_equal(out.numpy(), ref["gen_output"])


def test_generate_with_and_without_cache_agree(model, ref):
    kw = dict(input_ids=ref["gen_input_ids"], attention_mask=ref["gen_attention_mask"], max_new_tokens=6)
    np.testing.assert_array_equal(model.generate(use_cache=True, **kw).numpy(), model.generate(use_cache=False, **kw).numpy())


def test_sampling_is_reproducible_and_respects_top_k(model, ref):
    kw = dict(input_ids=ref["gen_input_ids"][:1], max_new_tokens=5, do_sample=True, top_k=3, temperature=0.7)
    tp.manual_seed(0)
    a = model.generate(**kw).numpy()
    tp.manual_seed(0)
    b = model.generate(**kw).numpy()
    np.testing.assert_array_equal(a, b)
    # top_k=1 leaves one candidate per step: sampling must then equal greedy decoding
    one = model.generate(**{**kw, "top_k": 1}).numpy()
    greedy = model.generate(input_ids=kw["input_ids"], max_new_tokens=5).numpy()
    np.testing.assert_array_equal(one, greedy)


def test_generate_builds_no_graph(model, ref):
    assert tp.is_grad_enabled()
    out = model.generate(input_ids=ref["gen_input_ids"][:1], max_new_tokens=2)
    assert out.grad_fn is None and tp.is_grad_enabled()


def test_sequence_classification_loads_base_weights_and_reports_new_head(caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="tinypeft"):
        clf = AutoModelForSequenceClassification.from_pretrained(MODEL_DIR)
    assert isinstance(clf, GPT2ForSequenceClassification)
    assert "newly initialized" in caplog.text and "score.weight" in caplog.text
    clf.config.pad_token_id = 0
    ids = np.array([[5, 6, 7, 0], [5, 6, 0, 0]])
    out = clf(input_ids=ids, labels=np.array([0, 1]))
    assert out.logits.shape == (2, 2) and np.isfinite(out.loss.item())


def test_from_config_builds_a_random_model_that_trains():
    config = GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=1, n_head=2)
    model = GPT2LMHeadModel.from_config(config)
    ids = np.array([[1, 2, 3, 4]])
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    assert model.transformer.wte.weight.grad is not None
    assert abs(loss.item() - np.log(50)) < 1.0  # near-uniform predictions at init


@pytest.mark.parity
@pytest.mark.parametrize("variant", [{}, {"scale_attn_by_inverse_layer_idx": True, "activation_function": "gelu", "n_inner": 40}])
def test_live_parity_with_transformers(tmp_path, variant):
    import torch
    import transformers
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=97, n_positions=32, n_embd=48, n_layer=2, n_head=3,
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **variant)
    ref = transformers.GPT2LMHeadModel(cfg).eval()
    ref.config._attn_implementation = "eager"
    ref.save_pretrained(tmp_path)
    ours = GPT2LMHeadModel.from_pretrained(tmp_path)

    rng = np.random.default_rng(0)
    ids = rng.integers(0, 97, size=(2, 9))
    mask = np.ones_like(ids)
    mask[1, 6:] = 0  # right padding
    labels = np.where(mask == 1, ids, -100)
    out_ref = ref(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), labels=torch.tensor(labels))
    out_ref.loss.backward()
    out = ours(input_ids=ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    real = mask.astype(bool)
    assert_close_to_scale(out.logits.data[real], out_ref.logits.detach().numpy()[real])
    np.testing.assert_allclose(out.loss.item(), out_ref.loss.item(), rtol=1e-5)
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        want = ref_params[name].grad.numpy()
        rel = np.abs(p.grad.data - want).max() / max(np.abs(want).max(), 1e-12)
        assert rel < 1e-4 or np.abs(want).max() < 1e-7, f"{name}: {rel:.2e}"

    prompt = np.array([[0, 0, 5, 6, 7], [8, 9, 10, 11, 12]])
    pmask = np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    want = ref.generate(input_ids=torch.tensor(prompt), attention_mask=torch.tensor(pmask), max_new_tokens=6,
                        do_sample=False, pad_token_id=0)
    got = ours.generate(input_ids=prompt, attention_mask=pmask, max_new_tokens=6, pad_token_id=0)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
