"""WhisperFeatureExtractor: a 16 kHz waveform -> the log-mel spectrogram Whisper reads, in NumPy.

The recipe (transformers' NumPy path, itself OpenAI's):
1. pad with zeros (or cut) to chunk_length seconds: n_samples = chunk_length * sampling_rate;
2. STFT: reflect-pad n_fft/2 on both sides, frames of n_fft every hop_length samples, each times a periodic
   Hann window, rfft -> power |X|^2  [1 + n_fft/2 frequencies, frames]; the last frame is dropped, so 30 s
   give exactly 3000 frames;
3. mel: a Slaney-style filter bank (triangles evenly spaced on the Slaney mel scale - linear below 1 kHz,
   logarithmic above - each scaled to unit area) maps the frequencies to feature_size mel bins;
4. log10 of max(mel, 1e-10); then everything below (max - 8) is raised to it (an 80 dB range); then
   (x + 4) / 4 brings the values to roughly [-1, 1].
"""
import json
from pathlib import Path

import numpy as np

from ..hub import resolve_model_dir
from ..tensor import Tensor

FEATURE_EXTRACTOR_NAME = "preprocessor_config.json"


def hertz_to_mel(freq):
    """Slaney's mel scale: 3 mels per 200 Hz up to 1 kHz (15 mels), then logarithmic (27 mels per factor 6.4)."""
    freq = np.asarray(freq, dtype=np.float64)
    mels = 3.0 * freq / 200.0
    log_region = freq >= 1000.0
    return np.where(log_region, 15.0 + np.log(np.maximum(freq, 1e-10) / 1000.0) * (27.0 / np.log(6.4)), mels)


def mel_to_hertz(mels):
    mels = np.asarray(mels, dtype=np.float64)
    freq = 200.0 * mels / 3.0
    return np.where(mels >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (mels - 15.0)), freq)


def mel_filter_bank(num_frequency_bins, num_mel_filters, min_frequency, max_frequency, sampling_rate):
    """[num_frequency_bins, num_mel_filters] Slaney triangles, area-normalised (librosa's norm="slaney")."""
    mel_freqs = np.linspace(hertz_to_mel(min_frequency), hertz_to_mel(max_frequency), num_mel_filters + 2)
    filter_freqs = mel_to_hertz(mel_freqs)  # the triangles' corners, in Hz
    fft_freqs = np.linspace(0, sampling_rate // 2, num_frequency_bins)
    slopes = filter_freqs[None, :] - fft_freqs[:, None]  # [bins, filters + 2]
    widths = np.diff(filter_freqs)
    down = -slopes[:, :-2] / widths[:-1]  # rising edge of each triangle
    up = slopes[:, 2:] / widths[1:]  # falling edge
    filters = np.maximum(0.0, np.minimum(down, up))
    return filters * (2.0 / (filter_freqs[2:] - filter_freqs[:-2]))[None, :]  # equal area per filter


def hann_window(length):
    """The periodic Hann window (torch.hann_window's default): 0.5 - 0.5 cos(2 pi n / length)."""
    return np.hanning(length + 1)[:-1]


def stft_power(waveform, n_fft, hop_length, window):
    """|rfft|^2 of centred, reflect-padded frames: [n_fft // 2 + 1, frames]."""
    x = np.pad(np.asarray(waveform, dtype=np.float64), (n_fft // 2, n_fft // 2), mode="reflect")
    n_frames = 1 + (x.size - n_fft) // hop_length
    frames = np.lib.stride_tricks.as_strided(
        x, shape=(n_frames, n_fft), strides=(x.strides[0] * hop_length, x.strides[0]), writeable=False)
    spec = np.fft.rfft(frames * window, axis=-1).astype(np.complex64)  # transformers keeps complex64 here
    return (np.abs(spec, dtype=np.float64) ** 2).T


class WhisperFeatureExtractor:
    model_input_names = ["input_features"]

    def __init__(self, feature_size=80, sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400,
                 padding_value=0.0, dither=0.0, return_attention_mask=False, **kwargs):
        if dither:
            raise NotImplementedError("WhisperFeatureExtractor(dither != 0) is not implemented (it adds random noise).")
        self.feature_size, self.sampling_rate, self.hop_length = feature_size, sampling_rate, hop_length
        self.chunk_length, self.n_fft, self.padding_value = chunk_length, n_fft, padding_value
        self.dither, self.return_attention_mask = dither, return_attention_mask
        self.n_samples = chunk_length * sampling_rate
        self.nb_max_frames = self.n_samples // hop_length
        self.mel_filters = mel_filter_bank(1 + n_fft // 2, feature_size, 0.0, 8000.0, sampling_rate)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, revision=None, **kwargs):
        path = resolve_model_dir(pretrained_model_name_or_path, revision=revision)
        file = Path(path) / FEATURE_EXTRACTOR_NAME
        if not file.is_file():
            raise OSError(f"{path} has no {FEATURE_EXTRACTOR_NAME}: it is not a speech model folder "
                          "(save one with feature_extractor.save_pretrained(dir)).")
        with open(file) as f:
            d = json.load(f)
        kind = d.get("feature_extractor_type", "WhisperFeatureExtractor")
        if kind != "WhisperFeatureExtractor":
            raise ValueError(f"{file}: feature_extractor_type {kind!r} is not supported; tinypeft has WhisperFeatureExtractor.")
        d.update(kwargs)
        return cls(**{k: v for k, v in d.items() if k not in ("feature_extractor_type", "processor_class")})

    def to_dict(self):
        return {"feature_extractor_type": "WhisperFeatureExtractor", "feature_size": self.feature_size,
                "sampling_rate": self.sampling_rate, "hop_length": self.hop_length,
                "chunk_length": self.chunk_length, "n_fft": self.n_fft, "padding_value": self.padding_value,
                "dither": self.dither, "return_attention_mask": self.return_attention_mask,
                "n_samples": self.n_samples, "nb_max_frames": self.nb_max_frames, "padding_side": "right"}

    def save_pretrained(self, save_directory):
        import os
        import tempfile

        save_directory = Path(save_directory)
        save_directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=save_directory, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, save_directory / FEATURE_EXTRACTOR_NAME)

    def log_mel_spectrogram(self, waveform):
        """One padded waveform [n_samples] -> [feature_size, nb_max_frames] (steps 2-4 above)."""
        power = stft_power(waveform, self.n_fft, self.hop_length, hann_window(self.n_fft))  # [bins, frames + 1]
        mel = np.maximum(1e-10, self.mel_filters.T @ power)  # [mels, frames + 1]
        log_spec = np.log10(mel).astype(np.float32)[:, :-1]
        log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
        return (log_spec + 4.0) / 4.0

    def __call__(self, raw_speech, truncation=True, pad_to_multiple_of=None, return_tensors=None,
                 return_attention_mask=None, padding="max_length", max_length=None, sampling_rate=None,
                 do_normalize=None, device="cpu", **kwargs):
        """One waveform (1-D) or a batch (a list of 1-D, or a 2-D array) -> {"input_features": [B, mels, frames]}."""
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            raise ValueError(f"This feature extractor works at {self.sampling_rate} Hz, but the audio is {sampling_rate} "
                             f"Hz: resample it first (tinypeft.audio.load_wav(path, sampling_rate={self.sampling_rate})).")
        if padding != "max_length" or pad_to_multiple_of or do_normalize or return_attention_mask or device != "cpu":
            raise NotImplementedError("WhisperFeatureExtractor: only padding='max_length' without normalisation "
                                      "or attention mask, on the CPU, is implemented (Whisper's own setting).")
        if isinstance(raw_speech, Tensor):
            raw_speech = raw_speech.data
        batched = (isinstance(raw_speech, np.ndarray) and raw_speech.ndim > 1) or (
            isinstance(raw_speech, (list, tuple)) and len(raw_speech) > 0 and
            isinstance(raw_speech[0], (np.ndarray, list, tuple)))
        waves = [np.asarray(w, dtype=np.float32) for w in raw_speech] if batched else [
            np.asarray(raw_speech, dtype=np.float32)]
        n = max_length or self.n_samples
        out = []
        for w in waves:
            if w.ndim != 1:
                raise ValueError(f"Only mono audio is supported: got a waveform of shape {w.shape}. Average the "
                                 "channels (w.mean(axis=0)) first.")
            if w.size == 0:
                raise ValueError("The waveform is empty: there is no audio to transcribe.")
            if w.size > n:
                if not truncation:
                    raise ValueError(f"The audio has {w.size} samples, more than {n} ({n / self.sampling_rate:g} s): "
                                     "cut it into chunks of chunk_length seconds, or pass truncation=True.")
                w = w[:n]
            padded = np.full(n, self.padding_value, dtype=np.float32)
            padded[: w.size] = w
            out.append(self.log_mel_spectrogram(padded))
        return {"input_features": np.stack(out)}  # [B, feature_size, frames]
