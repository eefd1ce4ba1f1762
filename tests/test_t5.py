"""tinypeft.models.t5 against transformers' T5ForConditionalGeneration and MT5ForConditionalGeneration.

Default tests compare with outputs transformers produced for the tiny fixture models
(tests/fixtures/make_fixtures.py: t5 = relu FFN + tied head, mt5 = gated-gelu + untied head; logits of all
decoder positions on a right-padded encoder batch, the loss with labels, greedy generations from left-padded
prompts); `-m parity` tests compute gradients and other configurations live with torch.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from tinypeft import Tensor
from tinypeft.testing import assert_close_to_scale
from tinypeft.models.t5 import (
    MT5Config,
    MT5ForConditionalGeneration,
    T5Config,
    T5EncoderModel,
    T5ForConditionalGeneration,
    T5Model,
    relative_position_bucket,
)

FIXTURES = Path(__file__).parent / "fixtures"
CLASSES = {"t5": T5ForConditionalGeneration, "mt5": MT5ForConditionalGeneration}
TIED_ALIASES = {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight"}


def model_dir(name):
    return FIXTURES / "models" / name


@pytest.fixture(scope="module", params=["t5", "mt5"])
def name(request):
    return request.param


@pytest.fixture(scope="module")
def ref(name):
    return dict(np.load(FIXTURES / "reference" / f"{name}.npz"))


@pytest.fixture(scope="module")
def model(name):
    return CLASSES[name].from_pretrained(model_dir(name))


def test_configs_from_checkpoints():
    t5, mt5 = T5Config.from_pretrained(model_dir("t5")), MT5Config.from_pretrained(model_dir("mt5"))
    assert (t5.dense_act_fn, t5.is_gated_act, t5.tie_word_embeddings, t5.scale_decoder_outputs) == ("relu", False, True, True)
    assert (mt5.dense_act_fn, mt5.is_gated_act, mt5.tie_word_embeddings, mt5.scale_decoder_outputs) == (
        "gelu_new", True, False, False)
    assert (t5.hidden_size, t5.num_attention_heads, t5.num_hidden_layers, t5.head_dim) == (32, 4, 2, 8)
    assert MT5Config().tie_word_embeddings is False and MT5Config().feed_forward_proj == "gated-gelu"
    assert T5Config(num_layers=3).num_decoder_layers == 3
    with pytest.raises(ValueError, match="feed_forward_proj"):
        T5Config(feed_forward_proj="gelu-gated")


def test_state_dict_keys_equal_checkpoint(name, model, tmp_path):
    from safetensors.numpy import load_file

    stored = set(load_file(model_dir(name) / "model.safetensors"))
    tied = TIED_ALIASES | ({"lm_head.weight"} if name == "t5" else set())
    assert set(model.state_dict()) == stored | tied  # torch's state_dict lists a shared weight under each name
    assert model.loading_info == {"missing_keys": [], "unexpected_keys": []}
    assert (model.lm_head.weight is model.shared.weight) == (name == "t5")
    assert model.encoder.embed_tokens.weight is model.shared.weight is model.decoder.embed_tokens.weight
    model.save_pretrained(tmp_path)
    assert set(load_file(tmp_path / "model.safetensors")) == stored  # tied weights stored once, as transformers


def test_module_names_are_transformers(model):
    names = dict(model.named_modules())
    for n in ("encoder.block.0.layer.0.SelfAttention.q", "encoder.block.0.layer.0.SelfAttention.relative_attention_bias",
              "encoder.block.1.layer.0.SelfAttention.v", "decoder.block.1.layer.1.EncDecAttention.q",
              "decoder.block.0.layer.2.DenseReluDense.wo", "encoder.final_layer_norm", "lm_head"):
        assert n in names, n
    assert "encoder.block.1.layer.0.SelfAttention.relative_attention_bias" not in names  # block 0 owns the table


def test_logits_match_reference(model, ref):
    """All decoder positions; the encoder's padding is masked out of encoder self- and cross-attention."""
    out = model(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"],
                decoder_input_ids=ref["decoder_input_ids"])
    assert_close_to_scale(out.logits.data, ref["logits"])


def test_loss_with_labels_matches_reference(model, ref):
    out = model(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"], labels=ref["labels"])
    np.testing.assert_allclose(out.loss.item(), ref["loss"], rtol=1e-5)
    assert_close_to_scale(out.logits.data, ref["logits"])


def test_shift_right_builds_decoder_inputs(model, ref):
    np.testing.assert_array_equal(model._shift_right(ref["labels"]), ref["decoder_input_ids"])


def test_greedy_generate_matches_reference(model, ref):
    cfg = model.config
    out = model.generate(input_ids=ref["gen_input_ids"], attention_mask=ref["gen_attention_mask"],
                         max_new_tokens=8, pad_token_id=cfg.pad_token_id, eos_token_id=cfg.eos_token_id)
    assert isinstance(out, Tensor)
    np.testing.assert_array_equal(out.data, ref["gen_output"])
    no_cache = model.generate(input_ids=ref["gen_input_ids"], attention_mask=ref["gen_attention_mask"],
                              max_new_tokens=8, use_cache=False)
    np.testing.assert_array_equal(no_cache.data, ref["gen_output"])


def test_cache_step_by_step_equals_full_decoder_pass(model, ref):
    ids, mask, dec = ref["input_ids"], ref["attention_mask"], ref["decoder_input_ids"]
    full = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits.data
    enc = model.get_encoder()(input_ids=ids, attention_mask=mask)
    past, steps = None, []
    for t in range(dec.shape[1]):
        out = model(encoder_outputs=enc, attention_mask=mask, decoder_input_ids=dec[:, t:t + 1],
                    past_key_values=past, use_cache=True)
        past = out.past_key_values
        steps.append(out.logits.data[:, 0])
    np.testing.assert_allclose(np.stack(steps, 1), full, atol=1e-5, rtol=0)
    B, H, S, hd = 3, 4, ids.shape[1], 8
    assert len(past) == 2 and all(len(layer) == 4 for layer in past)
    assert past[0][0].shape == (B, H, dec.shape[1], hd) and past[0][2].shape == (B, H, S, hd)


def test_encoder_model_and_base_model_share_the_stack(model, ref, name):
    enc = T5EncoderModel.from_pretrained(model_dir(name))
    assert enc.loading_info["missing_keys"] == []
    a = enc(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"]).last_hidden_state.data
    b = model.encoder(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"]).last_hidden_state.data
    np.testing.assert_array_equal(a, b)
    base = T5Model.from_pretrained(model_dir(name))
    h = base(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"],
             decoder_input_ids=ref["decoder_input_ids"]).last_hidden_state
    assert h.shape == (3, 5, 32)


def test_auto_classes_pick_t5_and_mt5(name):
    from tinypeft.models import AutoModel, AutoModelForSeq2SeqLM

    lm = AutoModelForSeq2SeqLM.from_pretrained(model_dir(name))
    assert type(lm) is CLASSES[name] and type(lm.config) is {"t5": T5Config, "mt5": MT5Config}[name]
    assert type(AutoModel.from_pretrained(model_dir(name))).__name__ == {"t5": "T5Model", "mt5": "MT5Model"}[name]


def test_relative_position_buckets():
    rel = np.arange(-200, 201)[None, :]
    bi = relative_position_bucket(rel, bidirectional=True, num_buckets=32, max_distance=128)[0]
    uni = relative_position_bucket(rel, bidirectional=False, num_buckets=32, max_distance=128)[0]
    at = lambda b, d: int(b[d + 200])  # noqa: E731
    # exact buckets for small distances; keys after the query get the upper half (bidirectional)
    assert [at(bi, d) for d in (0, -1, -7, 1, 7)] == [0, 1, 7, 17, 23]
    # logarithmic beyond max_exact, saturating at max_distance
    assert at(bi, -8) == 8 and at(bi, -127) == 15 and at(bi, -128) == 15 and at(bi, -200) == 15 and at(bi, 200) == 31
    assert np.all(np.diff(bi[:201]) <= 0) and np.all(np.diff(bi[201:]) >= 0)
    # a causal decoder never sees later keys: every positive distance is bucket 0
    assert np.all(uni[201:] == 0) and at(uni, -15) == 15 and at(uni, -16) == 16 and at(uni, -200) == 31


def test_gradients_reach_the_position_bias_and_dropout_trains(name):
    model = CLASSES[name].from_pretrained(model_dir(name))
    ref = dict(np.load(FIXTURES / "reference" / f"{name}.npz"))
    model.train()
    out = model(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"], labels=ref["labels"])
    assert np.isfinite(out.loss.item()) and abs(out.loss.item() - float(ref["loss"])) > 1e-6  # dropout is on
    out.loss.backward()
    for n in ("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
              "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"):
        assert np.abs(model.get_parameter(n).grad.data).max() > 0, n


# ----------------------------------------------------------------------------- live against transformers

def _load_theirs(name):
    import torch
    import transformers
    cls = {"t5": transformers.T5ForConditionalGeneration, "mt5": transformers.MT5ForConditionalGeneration}[name]
    return torch, transformers, cls.from_pretrained(model_dir(name), attn_implementation="eager").eval()


@pytest.mark.parity
def test_gradients_match_transformers(name, ref):
    torch, _, theirs = _load_theirs(name)
    ours = CLASSES[name].from_pretrained(model_dir(name))
    t = {k: torch.tensor(ref[k]) for k in ("input_ids", "attention_mask", "labels")}
    want = theirs(**t)
    got = ours(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"], labels=ref["labels"])
    np.testing.assert_allclose(got.loss.item(), want.loss.item(), rtol=1e-5)
    want.loss.backward()
    got.loss.backward()
    params = dict(ours.named_parameters())
    checked = set()
    for n, p in theirs.named_parameters():
        w, g = p.grad.numpy(), params[n].grad.data
        rel = np.abs(g - w).max() / np.abs(w).max()
        assert rel < 1e-4, f"{n}: relative error {rel:.2e}"
        checked.add(n)
    assert {"shared.weight", "encoder.block.0.layer.0.SelfAttention.q.weight",
            "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
            "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
            "decoder.block.1.layer.1.layer_norm.weight", "encoder.final_layer_norm.weight"} <= checked


@pytest.mark.parity
def test_relative_position_buckets_match_transformers():
    import torch
    import transformers  # noqa: F401
    from transformers.models.t5.modeling_t5 import T5Attention

    rel = np.arange(-600, 601)[:, None] - np.arange(0, 40)[None, :]
    for bidirectional in (True, False):
        for buckets, dist in ((32, 128), (8, 16), (16, 20), (6, 7)):
            want = T5Attention._relative_position_bucket(torch.tensor(rel), bidirectional, buckets, dist).numpy()
            got = relative_position_bucket(rel, bidirectional, buckets, dist)
            np.testing.assert_array_equal(got, want, err_msg=f"{bidirectional} {buckets} {dist}")


@pytest.mark.parity
@pytest.mark.parametrize("overrides", [
    {"feed_forward_proj": "gated-silu", "tie_word_embeddings": False},
    # (more encoder than decoder layers: transformers' generate sizes its cache by num_layers)
    {"feed_forward_proj": "relu", "num_layers": 3, "num_decoder_layers": 2, "relative_attention_num_buckets": 32,
     "relative_attention_max_distance": 128},
    {"feed_forward_proj": "gated-gelu", "d_kv": 6, "num_heads": 3},
], ids=["gated-silu-untied", "relu-3-encoder-layers", "gated-gelu-d_kv6"])
def test_seq2seq_lm_matches_transformers(tmp_path, overrides):
    """Longer sequences than the fixtures (every bucket kind), left and right padding, gradients, generation."""
    import torch
    import transformers
    torch.manual_seed(0)
    kw = dict(vocab_size=64, d_model=24, d_kv=8, num_heads=4, num_layers=2, d_ff=40,
              relative_attention_num_buckets=8, relative_attention_max_distance=10, pad_token_id=1,
              eos_token_id=0, decoder_start_token_id=1)
    kw.update(overrides)
    theirs = transformers.T5ForConditionalGeneration(transformers.T5Config(**kw)).eval()
    with torch.no_grad():
        for n, p in theirs.named_parameters():
            if "norm" in n:
                p.add_(0.1 * torch.randn_like(p))
    theirs.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    ours = T5ForConditionalGeneration.from_pretrained(tmp_path)
    assert ours.config.scale_decoder_outputs == saved.get("scale_decoder_outputs", saved["tie_word_embeddings"])

    rng = np.random.default_rng(0)
    ids = rng.integers(2, 64, (3, 23))
    mask = np.ones_like(ids)
    mask[1, 15:] = 0
    mask[2, :6] = 0
    ids[mask == 0] = 1
    labels = rng.integers(2, 64, (3, 19))
    labels[0, 12:] = -100
    want = theirs(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), labels=torch.tensor(labels))
    got = ours(input_ids=ids, attention_mask=mask, labels=labels)
    assert_close_to_scale(got.logits.data, want.logits.detach().numpy())
    np.testing.assert_allclose(got.loss.item(), want.loss.item(), rtol=1e-5)
    want.loss.backward()
    got.loss.backward()
    params = dict(ours.named_parameters())
    for n, p in theirs.named_parameters():
        if p.grad is None:
            continue
        w, g = p.grad.numpy(), params[n].grad.data
        assert np.abs(g - w).max() <= 1e-4 * np.abs(w).max() + 1e-7, n
    with torch.no_grad():
        gen = theirs.generate(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), max_new_tokens=12,
                              do_sample=False, num_beams=1, pad_token_id=1, eos_token_id=0)
    np.testing.assert_array_equal(ours.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12).data,
                                  gen.numpy())


@pytest.mark.parity
def test_self_attention_prefix_in_the_cache_matches_transformers(ref):
    """Prefix tuning's path: (k, v) pairs of N virtual tokens per decoder block, no cross-attention entries;
    the decoder mask covers them, and their positions shift the decoder's relative position bias."""
    torch, transformers, theirs = _load_theirs("t5")
    ours = T5ForConditionalGeneration.from_pretrained(model_dir("t5"))
    rng = np.random.default_rng(0)
    B, N, H, hd = 3, 3, 4, 8
    past = [tuple(rng.standard_normal((B, H, N, hd)).astype(np.float32) for _ in "kv") for _ in range(2)]
    dec = ref["decoder_input_ids"]
    dec_mask = np.ones((B, N + dec.shape[1]), dtype=np.int64)  # [B, N + T]
    dec_mask[1, N + 3:] = 0
    cache = transformers.EncoderDecoderCache(
        transformers.DynamicCache(ddp_cache_data=[(torch.tensor(k), torch.tensor(v)) for k, v in past],
                                  config=theirs.config),
        transformers.DynamicCache(config=theirs.config))
    with torch.no_grad():
        want = theirs(input_ids=torch.tensor(ref["input_ids"]), attention_mask=torch.tensor(ref["attention_mask"]),
                      decoder_input_ids=torch.tensor(dec), decoder_attention_mask=torch.tensor(dec_mask),
                      past_key_values=cache, use_cache=True)
    got = ours(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"], decoder_input_ids=dec,
               decoder_attention_mask=dec_mask, past_key_values=past, use_cache=True)
    assert_close_to_scale(got.logits.data, want.logits.numpy())
    assert len(got.past_key_values[0]) == 4 and got.past_key_values[0][0].shape == (B, H, N + dec.shape[1], hd)
