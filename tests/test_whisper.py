"""Whisper against the outputs transformers and PEFT stored in tests/fixtures/reference/whisper.npz
(made by tests/fixtures/make_whisper_fixtures.py from the inputs reference_inputs() rebuilds), plus the
model's bad-input errors. The live comparisons are in test_whisper_parity.py."""
import sys
from pathlib import Path

import numpy as np
import pytest

import tinypeft as tp
from tinypeft.models import AutoFeatureExtractor, AutoModelForSpeechSeq2Seq, AutoProcessor
from tinypeft.models.processing_whisper import WhisperProcessor
from tinypeft.models.whisper import WhisperConfig, WhisperForConditionalGeneration, WhisperModel, sinusoids

FIXTURES = Path(__file__).parent / "fixtures"
WHISPER = FIXTURES / "models" / "whisper"
ADAPTER = FIXTURES / "peft" / "lora_whisper"
sys.path.insert(0, str(FIXTURES))
from whisper_inputs import FEATURE_FRAMES, reference_inputs  # noqa: E402

REF = np.load(FIXTURES / "reference" / "whisper.npz")
# measured: 4.2e-06 (logits of std 1.3, float32)
LOGITS_ATOL = 1e-5


@pytest.fixture(scope="module")
def model():
    return AutoModelForSpeechSeq2Seq.from_pretrained(WHISPER)


@pytest.fixture(scope="module")
def inputs():
    return reference_inputs()


def test_loads_every_checkpoint_key_with_transformers_names(model):
    assert model.loading_info == {"missing_keys": [], "unexpected_keys": []}
    names = dict(model.named_parameters())
    for key in ["model.encoder.conv1.weight", "model.encoder.conv2.bias", "model.encoder.embed_positions.weight",
                "model.encoder.layers.0.self_attn.k_proj.weight", "model.decoder.embed_positions.weight",
                "model.decoder.layers.1.encoder_attn.q_proj.bias", "model.decoder.layers.0.encoder_attn_layer_norm.weight",
                "model.decoder.layer_norm.bias", "model.encoder.layer_norm.weight"]:
        assert key in names, key
    assert "model.encoder.layers.0.self_attn.k_proj.bias" not in names  # Whisper's k_proj has no bias
    assert model.proj_out.weight is model.model.decoder.embed_tokens.weight  # tied
    assert not model.model.encoder.embed_positions.weight.requires_grad  # fixed sinusoids


def test_encoder_positions_are_the_stored_sinusoids(model):
    table = model.model.encoder.embed_positions.weight.detach().numpy()
    # measured 6e-08 here; up to 3e-05 at d_model 384 (float32 sin/exp last bits differ from torch's)
    np.testing.assert_allclose(table, sinusoids(*table.shape), atol=1e-6)


def test_logits_equal_transformers(model, inputs):
    features, dec, _ = inputs
    with tp.no_grad():
        logits = model(input_features=tp.tensor(features), decoder_input_ids=dec).logits.numpy()
    np.testing.assert_allclose(logits, REF["logits"], atol=LOGITS_ATOL, rtol=0)


def test_kv_cache_gives_the_same_logits_as_the_full_pass(model, inputs):
    features, dec, _ = inputs
    with tp.no_grad():
        enc = model.get_encoder()(tp.tensor(features))
        full = model(encoder_outputs=enc, decoder_input_ids=dec).logits.numpy()
        out = model(encoder_outputs=enc, decoder_input_ids=dec[:, :3], use_cache=True)
        past, steps = out.past_key_values, [out.logits.numpy()]
        assert len(past) == 2 and len(past[0]) == 4  # (self k, self v, cross k, cross v) per layer
        for t in range(3, dec.shape[1]):
            out = model(encoder_outputs=enc, decoder_input_ids=dec[:, t:t + 1], past_key_values=past, use_cache=True)
            past = out.past_key_values
            steps.append(out.logits.numpy())
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5)


@pytest.mark.parametrize("name,kwargs", [("detect", {}), ("fr", {"language": "fr"}),
                                         ("en_translate", {"language": "english", "task": "translate"})])
def test_greedy_generation_equals_transformers(model, inputs, name, kwargs):
    ids = model.generate(tp.tensor(inputs[0]), **kwargs).numpy()
    np.testing.assert_array_equal(ids, REF[f"generate_{name}"])


def test_prompt_tokens_follow_whisper(model, inputs):
    gc = model.generation_config
    prompt = model._init_tokens(gc, 2, "fr", "translate", None)
    assert prompt.tolist() == [[gc.decoder_start_token_id, gc.lang_to_id["<|fr|>"], gc.task_to_id["translate"],
                                gc.no_timestamps_token_id]] * 2
    enc = model.get_encoder()(tp.tensor(inputs[0]))
    detected = model._init_tokens(gc, 2, None, None, enc)  # forced_decoder_ids: [[1, None], [2, transcribe]]
    assert set(detected[:, 1].tolist()) <= set(gc.lang_to_id.values())
    assert detected[:, 2].tolist() == [gc.task_to_id["transcribe"]] * 2


def test_suppressed_tokens_are_never_generated(model, inputs):
    ids = model.generate(tp.tensor(inputs[0]), language="en", max_new_tokens=40).numpy()
    assert not np.isin(ids, model.generation_config.suppress_tokens).any()
    assert not np.isin(ids[:, 0], model.generation_config.begin_suppress_tokens).any()


def test_features_equal_transformers():
    fe = AutoFeatureExtractor.from_pretrained(WHISPER)
    wave = reference_inputs()[2]
    feats = fe(wave, sampling_rate=16000)["input_features"]
    assert feats.shape == (1, 80, 3000) and feats.dtype == np.float32
    # measured: 0.0 (bit-identical) to transformers' NumPy path; 2.9e-06 to its torch path, which made REF
    np.testing.assert_allclose(feats[:, :, :FEATURE_FRAMES], REF["features"], atol=1e-5, rtol=0)
    # silence after the 1 s of audio: every frame past the signal sits at the floor, max - 8 -> (x + 4) / 4
    assert np.allclose(feats[0, :, 110:], feats.max() - 2.0)


def test_feature_extractor_bad_input():
    fe = AutoFeatureExtractor.from_pretrained(WHISPER)
    with pytest.raises(ValueError, match="resample"):
        fe(np.zeros(100), sampling_rate=8000)
    with pytest.raises(ValueError, match="empty"):
        fe(np.zeros(0, dtype=np.float32), sampling_rate=16000)
    with pytest.raises(ValueError, match="cut it into chunks"):
        fe(np.zeros(16000 * 31, dtype=np.float32), sampling_rate=16000, truncation=False)
    with pytest.raises(ValueError, match="mono"):
        fe([np.zeros((2, 100))], sampling_rate=16000)
    long = fe(np.ones(16000 * 31, dtype=np.float32) * 0.1, sampling_rate=16000)  # truncated, as transformers
    assert long["input_features"].shape == (1, 80, 3000)


def test_auto_processor_pairs_feature_extractor_and_tokenizer(tmp_path):
    proc = AutoProcessor.from_pretrained(WHISPER)
    assert isinstance(proc, WhisperProcessor)
    out = proc(audio=reference_inputs()[2], sampling_rate=16000, text="the fox")
    assert out["input_features"].shape == (1, 80, 3000)
    assert proc.decode(out["labels"]) == "the fox"
    proc.save_pretrained(tmp_path)
    assert AutoFeatureExtractor.from_pretrained(tmp_path).to_dict() == proc.feature_extractor.to_dict()
    (tmp_path / "tokenizer.json").unlink()
    assert type(AutoProcessor.from_pretrained(tmp_path)).__name__ == "WhisperFeatureExtractor"


def test_model_bad_input(model):
    with pytest.raises(ValueError, match=r"\(batch, 80, 3000\)"):
        model(input_features=tp.zeros(1, 80, 2000), decoder_input_ids=np.array([[1]]))
    with pytest.raises(ValueError, match="input_features"):
        model(input_ids=np.array([[1]]), decoder_input_ids=np.array([[1]]))
    with pytest.raises(NotImplementedError, match="long-form"):
        model.generate(tp.zeros(1, 80, 4000))
    with pytest.raises(ValueError, match="Unsupported language"):
        model.generate(tp.zeros(1, 80, 3000), language="klingon")
    with pytest.raises(ValueError, match="max_target_positions"):
        model.generate(tp.zeros(1, 80, 3000), language="en", max_new_tokens=100)
    with pytest.raises(NotImplementedError, match="timestamp"):
        model.generate(tp.zeros(1, 80, 3000), return_timestamps=True)


def test_labels_give_the_teacher_forced_loss(model, inputs):
    features, dec, _ = inputs
    labels = dec.copy()
    labels[1, -2:] = -100
    with tp.no_grad():
        out = model(input_features=tp.tensor(features), labels=labels)
        shifted = model(input_features=tp.tensor(features), decoder_input_ids=model.prepare_decoder_input_ids_from_labels(labels))
    logp = tp.functional.log_softmax(shifted.logits, -1).numpy()
    keep = labels != -100
    expected = -np.take_along_axis(logp, np.where(keep, labels, 0)[..., None], -1)[..., 0][keep].mean()
    np.testing.assert_allclose(out.loss.item(), expected, rtol=1e-5)


def test_from_config_builds_with_sinusoids_and_tied_head():
    tp.manual_seed(0)
    cfg = WhisperConfig(vocab_size=50, d_model=8, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=16, decoder_ffn_dim=16, num_mel_bins=4,
                        max_source_positions=6, max_target_positions=10, pad_token_id=0, decoder_start_token_id=1)
    m = WhisperForConditionalGeneration.from_config(cfg)
    np.testing.assert_allclose(m.model.encoder.embed_positions.weight.detach().numpy(), sinusoids(6, 8))
    assert m.proj_out.weight is m.model.decoder.embed_tokens.weight
    out = m(input_features=tp.randn(2, 4, 12), decoder_input_ids=np.array([[1, 2], [1, 3]]))
    assert out.logits.shape == (2, 2, 50)
    base = WhisperModel.from_config(cfg)
    assert base(input_features=tp.randn(1, 4, 12), decoder_input_ids=np.array([[1]])).last_hidden_state.shape == (1, 1, 8)


def test_auto_peft_model_loads_peft_adapter_without_task_type(inputs):
    """The quicktour's AutoPeftModel.from_pretrained(adapter) line, on a PEFT-made LoRA for Whisper."""
    model = tp.AutoPeftModel.from_pretrained(str(ADAPTER))
    assert type(model).__name__ == "PeftModel"
    assert type(model.get_base_model()).__name__ == "WhisperForConditionalGeneration"
    features, dec, _ = inputs
    with tp.no_grad():
        logits = model(input_features=tp.tensor(features), decoder_input_ids=dec).logits.numpy()
    np.testing.assert_allclose(logits, REF["lora_logits"], atol=LOGITS_ATOL, rtol=0)  # measured 3.9e-06
    np.testing.assert_array_equal(model.generate(input_features=tp.tensor(features), language="fr").numpy(),
                                  REF["lora_generate_fr"])
    merged = model.merge_and_unload()
    np.testing.assert_array_equal(merged.generate(tp.tensor(features), language="fr").numpy(), REF["lora_generate_fr"])


def test_lora_on_whisper_trains_only_the_adapter(inputs):
    model = AutoModelForSpeechSeq2Seq.from_pretrained(WHISPER)
    peft_model = tp.get_peft_model(model, tp.LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert len(trainable) == 2 * 2 * (2 + 2 * 2)  # A and B, q and v, 2 encoder + 2x2 decoder attentions
    features, dec, _ = inputs
    out = peft_model(input_features=tp.tensor(features[:1]), labels=dec[:1])
    out.loss.backward()
    assert all(p.grad is not None for n, p in peft_model.named_parameters() if p.requires_grad)


def test_save_pretrained_roundtrip_keeps_generation_config(model, inputs, tmp_path):
    model.save_pretrained(tmp_path)
    assert (tmp_path / "generation_config.json").is_file()
    again = AutoModelForSpeechSeq2Seq.from_pretrained(tmp_path)
    assert again.generation_config.to_dict() == model.generation_config.to_dict()
    np.testing.assert_array_equal(again.generate(tp.tensor(inputs[0]), language="fr").numpy(), REF["generate_fr"])


def test_spec_augment_is_refused_in_training(model, inputs):
    m = AutoModelForSpeechSeq2Seq.from_pretrained(WHISPER)
    m.config.apply_spec_augment = True
    m.train()
    with pytest.raises(NotImplementedError, match="apply_spec_augment = False"):
        m(input_features=tp.tensor(inputs[0][:1]), decoder_input_ids=inputs[1][:1])


def test_an_adapter_without_task_type_records_its_base_class(tmp_path):
    """PEFT writes auto_mapping when task_type is None, so its AutoPeftModel can rebuild the base class."""
    import json

    model = tp.get_peft_model(AutoModelForSpeechSeq2Seq.from_pretrained(WHISPER),
                              tp.LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "adapter_config.json").read_text())
    assert saved["auto_mapping"] == {"base_model_class": "WhisperForConditionalGeneration",
                                     "parent_library": "transformers.models.whisper.modeling_whisper"}
    loaded = tp.AutoPeftModel.from_pretrained(tmp_path)
    assert type(loaded.get_base_model()).__name__ == "WhisperForConditionalGeneration"
