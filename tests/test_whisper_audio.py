"""Reading WAV files (tinypeft.audio), the resampler, and `tinypeft transcribe` on the tiny Whisper fixture."""
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

import tinypeft as tp
from tinypeft.audio import load_wav, resample, resample_reference, save_wav
from tinypeft.models import AutoModelForSpeechSeq2Seq, AutoProcessor
from cli_helpers import run  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
WHISPER = FIXTURES / "models" / "whisper"
ADAPTER = FIXTURES / "peft" / "lora_whisper"


def tone(sr, seconds=1.0, freqs=(440.0, 3000.0)):
    t = np.arange(int(sr * seconds)) / sr
    return sum(0.3 * np.sin(2 * np.pi * f * t) for f in freqs)


def write_pcm(path, frames, sr, width=2, channels=1):
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(width)
        f.setframerate(sr)
        f.writeframes(frames)


@pytest.mark.parametrize("orig", [8000, 22050, 44100, 48000])
def test_resample_reproduces_band_limited_tones(orig):
    y = resample(tone(orig), orig, 16000)
    assert y.size == 16000 and y.dtype == np.float32
    expected = tone(16000)
    # away from the edges (where the signal stops) the interpolation error is tiny: measured 4e-05 .. 4e-04
    assert np.abs(y[200:-200] - expected[200:-200]).max() < 1e-3


@pytest.mark.parametrize("orig,new", [(44100, 16000), (8000, 16000), (22050, 16000), (16001, 16000), (16000, 44100)])
def test_polyphase_resample_equals_the_plain_formula(orig, new):
    x = np.random.default_rng(orig).standard_normal(orig // 3)
    np.testing.assert_allclose(resample(x, orig, new), resample_reference(x, orig, new), atol=1e-6)


def test_resample_removes_what_the_new_rate_cannot_hold():
    y = resample(tone(44100, freqs=(12000.0,)), 44100, 16000)  # above 8 kHz: must not fold back as 4 kHz
    assert np.abs(y[200:-200]).max() < 1e-3  # measured 7e-05


def test_wav_roundtrip_and_stereo_downmix(tmp_path):
    x = tone(16000).astype(np.float32)
    save_wav(tmp_path / "a.wav", x, 16000)
    np.testing.assert_allclose(load_wav(tmp_path / "a.wav"), x, atol=1 / 32768)
    pcm = (np.stack([x, -x / 2], axis=1) * 32768).round().astype("<i2")
    write_pcm(tmp_path / "s.wav", pcm.tobytes(), 16000, channels=2)
    np.testing.assert_allclose(load_wav(tmp_path / "s.wav"), x / 4, atol=1 / 32768)
    save_wav(tmp_path / "b.wav", tone(44100), 44100)
    assert load_wav(tmp_path / "b.wav").shape == (16000,)


def test_unsupported_wav_files_are_refused_with_the_fix(tmp_path):
    write_pcm(tmp_path / "24.wav", b"\0" * 300, 16000, width=3)
    with pytest.raises(ValueError, match="24-bit.*ffmpeg"):
        load_wav(tmp_path / "24.wav")
    write_pcm(tmp_path / "empty.wav", b"", 16000)
    with pytest.raises(ValueError, match="no audio"):
        load_wav(tmp_path / "empty.wav")
    # a float WAV (format tag 3), which the standard library cannot read
    data = np.zeros(16, dtype="<f4").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 3, 1, 16000, 64000, 4, 32) + b"data" + struct.pack("<I", len(data))
    (tmp_path / "float.wav").write_bytes(header + data)
    with pytest.raises(ValueError, match="16-bit PCM WAV.*ffmpeg"):
        load_wav(tmp_path / "float.wav")
    (tmp_path / "x.mp3").write_bytes(b"ID3\x04 not a wav")
    with pytest.raises(ValueError, match="not a WAV file"):
        load_wav(tmp_path / "x.mp3")
    save_wav(tmp_path / "long.wav", np.zeros(16000 * 3), 16000)
    with pytest.raises(ValueError, match="at most 2 s.*segment"):
        load_wav(tmp_path / "long.wav", max_seconds=2)
    with pytest.raises(FileNotFoundError):
        load_wav(tmp_path / "missing.wav")


def _expected(path, language=None, adapter=None):
    model = AutoModelForSpeechSeq2Seq.from_pretrained(WHISPER)
    if adapter:
        model = tp.PeftModel.from_pretrained(model, str(adapter))
    proc = AutoProcessor.from_pretrained(WHISPER)
    feats = proc.feature_extractor(load_wav(path), sampling_rate=16000)["input_features"]
    ids = model.generate(tp.tensor(feats), language=language).numpy()
    return proc.batch_decode(ids, skip_special_tokens=True)[0].strip()


def test_transcribe_prints_one_line_per_file(tmp_path, capsys):
    save_wav(tmp_path / "a.wav", tone(44100), 44100)
    save_wav(tmp_path / "b.wav", tone(16000, freqs=(200.0,)), 16000)
    code, out, err = run(capsys, "transcribe", "--model", WHISPER, tmp_path / "a.wav", tmp_path / "b.wav")
    assert code == 0, err
    assert out.splitlines() == [_expected(tmp_path / "a.wav"), _expected(tmp_path / "b.wav")]
    code, out, err = run(capsys, "transcribe", "--model", WHISPER, "--adapter", ADAPTER, "--language", "fr",
                         tmp_path / "a.wav")
    assert code == 0, err
    assert out.splitlines() == [_expected(tmp_path / "a.wav", "fr", ADAPTER)]


def test_transcribe_usage_errors(tmp_path, capsys):
    save_wav(tmp_path / "long.wav", np.zeros(16000 * 31), 16000)
    code, _, err = run(capsys, "transcribe", "--model", WHISPER, tmp_path / "long.wav")
    assert code == 2 and "30 s at a time" in err
    code, _, err = run(capsys, "transcribe", "--model", WHISPER, tmp_path / "none.wav")
    assert code == 2 and "No audio file" in err
    code, _, err = run(capsys, "transcribe", "--model", FIXTURES / "models" / "gpt2", tmp_path / "long.wav")
    assert code == 2 and "preprocessor_config.json" in err


def test_merge_then_transcribe_equals_transcribe_with_the_adapter(tmp_path, capsys):
    save_wav(tmp_path / "a.wav", tone(16000), 16000)
    code, _, err = run(capsys, "merge", "--model", WHISPER, "--adapter", ADAPTER, "--output", tmp_path / "merged")
    assert code == 0, err
    assert (tmp_path / "merged" / "preprocessor_config.json").is_file()
    code, merged, err = run(capsys, "transcribe", "--model", tmp_path / "merged", "--language", "fr", tmp_path / "a.wav")
    assert code == 0, err
    code, adapted, err = run(capsys, "transcribe", "--model", WHISPER, "--adapter", ADAPTER, "--language", "fr",
                             tmp_path / "a.wav")
    assert code == 0, err
    assert merged == adapted and merged.strip()
    assert merged.splitlines() != [_expected(tmp_path / "a.wav", "fr")]  # the adapter did change the text
