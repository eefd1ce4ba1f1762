"""Whisper, live against transformers and PEFT (`pytest -m parity`): logits and every gradient, log-mel
features, greedy generation, and LoRA adapters both ways. torch is imported inside the tests, so the default
suite collects this file without it, while a parity run without the references fails instead of skipping."""
import sys
from pathlib import Path

import numpy as np
import pytest

import tinypeft as tp
from tinypeft.models import AutoFeatureExtractor, AutoModelForSpeechSeq2Seq

pytestmark = pytest.mark.parity
FIXTURES = Path(__file__).parent / "fixtures"
WHISPER = FIXTURES / "models" / "whisper"
ADAPTER = FIXTURES / "peft" / "lora_whisper"
sys.path.insert(0, str(FIXTURES))
from whisper_inputs import reference_inputs  # noqa: E402


def hf_model():
    import transformers

    return transformers.WhisperForConditionalGeneration.from_pretrained(WHISPER).eval()


def test_logits_loss_and_every_gradient_equal_transformers():
    import torch

    features, dec, _ = reference_inputs()
    labels = dec.copy()
    labels[1, -1] = -100
    ours = AutoModelForSpeechSeq2Seq.from_pretrained(WHISPER)
    theirs = hf_model()
    out = ours(input_features=tp.tensor(features), labels=labels)
    ref = theirs(input_features=torch.tensor(features), labels=torch.tensor(labels))
    logits_err = np.abs(out.logits.detach().numpy() - ref.logits.detach().numpy()).max()
    assert logits_err < 1e-5, logits_err  # measured 4.2e-06 (logits std 1.3)
    assert abs(out.loss.item() - ref.loss.item()) < 1e-5
    out.loss.backward()
    ref.loss.backward()
    ours_params = dict(ours.named_parameters())
    worst = 0.0
    for name, p in theirs.named_parameters():
        if name == "model.encoder.embed_positions.weight":
            # frozen in WhisperEncoder.__init__ (and in ours); transformers' from_pretrained loses that flag
            assert not ours_params[name].requires_grad and ours_params[name].grad is None
            continue
        g, gt = ours_params[name].grad.numpy(), p.grad.numpy()
        scale = np.abs(gt).max() + 1e-12
        worst = max(worst, np.abs(g - gt).max() / scale)
        np.testing.assert_allclose(g, gt, atol=1e-5 * scale, rtol=0, err_msg=name)
    print(f"worst gradient error relative to each tensor's largest entry: {worst:.2e}")  # measured 2.7e-06


@pytest.mark.parametrize("kind", ["tone", "noise", "short", "long"])
def test_features_equal_transformers(kind):
    import transformers

    rng = np.random.default_rng(3)
    wave = {"tone": reference_inputs()[2], "noise": 0.3 * rng.standard_normal(16000 * 7),
            "short": 0.1 * rng.standard_normal(401), "long": 0.2 * rng.standard_normal(16000 * 31)}[kind]
    wave = wave.astype(np.float32)
    ours = AutoFeatureExtractor.from_pretrained(WHISPER)(wave, sampling_rate=16000)["input_features"]
    fe = transformers.WhisperFeatureExtractor.from_pretrained(WHISPER)
    theirs = fe(wave, sampling_rate=16000, return_tensors="np").input_features  # torch's STFT when torch is there
    assert ours.shape == theirs.shape == (1, 80, 3000)
    print(kind, np.abs(ours - theirs).max())
    assert np.abs(ours - theirs).max() < 1e-5  # measured <= 3e-06
    padded = np.zeros(fe.n_samples, dtype=np.float32)
    padded[: min(wave.size, fe.n_samples)] = wave[: fe.n_samples]
    np.testing.assert_array_equal(ours, fe._np_extract_fbank_features(padded[None], "cpu"))  # bit-identical


@pytest.mark.parametrize("kwargs", [{}, {"language": "fr"}, {"language": "en", "task": "translate"},
                                    {"language": "en", "max_new_tokens": 30}, {"task": "transcribe"}])
def test_greedy_generation_is_token_identical(kwargs):
    import torch

    features = reference_inputs()[0]
    ours = AutoModelForSpeechSeq2Seq.from_pretrained(WHISPER).generate(tp.tensor(features), **kwargs).numpy()
    with torch.no_grad():
        theirs = hf_model().generate(torch.tensor(features), **kwargs).numpy()
    np.testing.assert_array_equal(ours, theirs)


def test_auto_peft_model_gives_peft_outputs():
    import peft
    import torch

    features, dec, _ = reference_inputs()
    ours = tp.AutoPeftModel.from_pretrained(str(ADAPTER))
    theirs = peft.AutoPeftModel.from_pretrained(str(ADAPTER)).eval()
    assert type(theirs.get_base_model()).__name__ == type(ours.get_base_model()).__name__
    with tp.no_grad(), torch.no_grad():
        a = ours(input_features=tp.tensor(features), decoder_input_ids=dec).logits.numpy()
        b = theirs(input_features=torch.tensor(features), decoder_input_ids=torch.tensor(dec)).logits.numpy()
        print(np.abs(a - b).max())
        assert np.abs(a - b).max() < 1e-5  # measured 3.9e-06
        g_ours = ours.generate(input_features=tp.tensor(features), language="en").numpy()
        g_theirs = theirs.generate(input_features=torch.tensor(features), language="en").numpy()
    np.testing.assert_array_equal(g_ours, g_theirs)
    # merge_and_unload, then generate: the plain models agree too
    with torch.no_grad():
        merged_theirs = theirs.merge_and_unload().generate(torch.tensor(features), language="fr").numpy()
    np.testing.assert_array_equal(ours.merge_and_unload().generate(tp.tensor(features), language="fr").numpy(),
                                  merged_theirs)


def test_tinypeft_lora_on_whisper_loads_in_peft(tmp_path):
    import peft
    import torch

    features, dec, _ = reference_inputs()
    tp.manual_seed(0)
    config = tp.LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    ours = tp.get_peft_model(AutoModelForSpeechSeq2Seq.from_pretrained(WHISPER), config).eval()
    ours.save_pretrained(tmp_path)
    theirs = peft.PeftModel.from_pretrained(hf_model(), str(tmp_path)).eval()
    with tp.no_grad(), torch.no_grad():
        a = ours(input_features=tp.tensor(features), decoder_input_ids=dec).logits.numpy()
        b = theirs(input_features=torch.tensor(features), decoder_input_ids=torch.tensor(dec)).logits.numpy()
        base = hf_model()(input_features=torch.tensor(features), decoder_input_ids=torch.tensor(dec)).logits.numpy()
    assert np.abs(b - base).max() > 0.1  # the adapter changes the outputs, so the match below means something
    rel = np.abs(a - b).max() / np.abs(b).max()
    print(rel)
    assert rel < 1e-5  # measured 3.5e-06 relative to the largest logit (1.6e-05 absolute)
    # PEFT's AutoPeftModel (the quicktour's line) rebuilds the base from adapter_config.json's auto_mapping
    theirs_auto = peft.AutoPeftModel.from_pretrained(str(tmp_path)).eval()
    assert type(theirs_auto.get_base_model()).__name__ == "WhisperForConditionalGeneration"
    with torch.no_grad():
        c = theirs_auto(input_features=torch.tensor(features), decoder_input_ids=torch.tensor(dec)).logits.numpy()
    assert np.abs(a - c).max() / np.abs(c).max() < 1e-5


def test_transformers_loads_what_tinypeft_saves(tmp_path):
    import torch
    import transformers

    features, dec, _ = reference_inputs()
    ours = AutoModelForSpeechSeq2Seq.from_pretrained(WHISPER)
    ours.save_pretrained(tmp_path)
    theirs = transformers.WhisperForConditionalGeneration.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        b = theirs(input_features=torch.tensor(features), decoder_input_ids=torch.tensor(dec)).logits.numpy()
    np.testing.assert_allclose(b, np.load(FIXTURES / "reference" / "whisper.npz")["logits"], atol=0, rtol=0)
    assert theirs.generation_config.lang_to_id == ours.generation_config.lang_to_id
