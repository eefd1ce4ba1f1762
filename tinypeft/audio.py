"""Reading speech from a WAV file with the standard library, and resampling it to the model's rate.

load_wav(path) reads 16-bit PCM WAV (the format `ffmpeg -i in.mp3 -ac 1 -ar 16000 -sample_fmt s16 out.wav`
writes) into float32 samples in [-1, 1); stereo is averaged to mono. Anything else (24/32-bit, float,
compressed, empty) is refused with the ffmpeg command that fixes it.

resample(x, orig_sr, new_sr) is band-limited interpolation with a Hann-windowed sinc (Smith's
"bandlimited interpolation", the method of torchaudio's and resampy's resamplers):

    y(t) = sum_k x[k] * 2 fc/orig_sr * sinc(2 fc (t - k/orig_sr)) * hann((t - k/orig_sr) / T),   t = n / new_sr

with cutoff fc = 0.99 * min(orig_sr, new_sr) / 2 (just below the lower Nyquist frequency, so nothing folds
back when downsampling) and the window spanning ZERO_CROSSINGS zero crossings of the sinc on each side
(T = ZERO_CROSSINGS / (2 fc)). Samples outside the signal count as zero.
"""
import math
import wave
from pathlib import Path

import numpy as np

ZERO_CROSSINGS = 16
ROLLOFF = 0.99
FIX = "convert it with: ffmpeg -i INPUT -ac 1 -ar 16000 -sample_fmt s16 OUTPUT.wav"


def _kernel(d, fc, orig_sr, half):
    """The interpolation weight of an input sample d input-samples away from the output's time."""
    w = (2 * fc / orig_sr) * np.sinc(2 * fc / orig_sr * d)
    return w * np.where(np.abs(d) < half, 0.5 * (1 + np.cos(np.pi * d / half)), 0.0)  # Hann window


def _setup(x, orig_sr, new_sr):
    if orig_sr <= 0 or new_sr <= 0:
        raise ValueError(f"Sampling rates must be positive, got {orig_sr} and {new_sr}.")
    fc = ROLLOFF * min(orig_sr, new_sr) / 2  # Hz
    half = ZERO_CROSSINGS / (2 * fc) * orig_sr  # the window's half-width, in input samples
    taps = np.arange(-math.floor(half), math.floor(half) + 2)  # offsets around floor(centre)
    xp = np.concatenate([np.zeros(taps.size), np.asarray(x, dtype=np.float64), np.zeros(taps.size)])
    return math.ceil(len(x) * new_sr / orig_sr), fc, half, taps, xp


def resample_reference(x, orig_sr, new_sr):
    """The formula above, one weight per (output, input) pair: slow and plain; resample() is tested against it."""
    n_out, fc, half, taps, xp = _setup(x, orig_sr, new_sr)
    out = np.empty(n_out)
    for lo in range(0, n_out, 16384):  # chunks keep the [outputs, taps] weight matrix small
        n = np.arange(lo, min(lo + 16384, n_out))
        centre = n * (orig_sr / new_sr)  # output time, in input samples
        k = np.floor(centre).astype(np.int64)[:, None] + taps[None, :]  # [n, taps] input indices
        out[lo: lo + n.size] = (xp[k + taps.size] * _kernel(centre[:, None] - k, fc, orig_sr, half)).sum(axis=1)
    return out.astype(np.float32)


def resample(x, orig_sr, new_sr):
    """float waveform at orig_sr -> float32 waveform at new_sr, ceil(len * new_sr / orig_sr) samples.

    Polyphase: with g = gcd(orig_sr, new_sr), output n sits at input time n * down / up (down = orig_sr / g,
    up = new_sr / g), whose fractional part repeats every `up` outputs; so only `up` rows of weights
    exist, computed once, instead of one row per output sample."""
    if orig_sr == new_sr:
        return np.asarray(x, dtype=np.float32)
    up, down = new_sr // math.gcd(orig_sr, new_sr), orig_sr // math.gcd(orig_sr, new_sr)
    if up > 1 << 14:
        return resample_reference(x, orig_sr, new_sr)  # an odd rate pair: the table would be larger than the work
    n_out, fc, half, taps, xp = _setup(x, orig_sr, new_sr)
    phase = np.arange(up)
    table = _kernel(((phase * down) % up / up)[:, None] - taps[None, :], fc, orig_sr, half)  # [up, taps]
    out = np.empty(n_out)
    for lo in range(0, n_out, 16384):
        n = np.arange(lo, min(lo + 16384, n_out))
        k = (n * down) // up  # floor(centre), exactly
        out[lo: lo + n.size] = (xp[k[:, None] + taps[None, :] + taps.size] * table[n % up]).sum(axis=1)
    return out.astype(np.float32)


def load_wav(path, sampling_rate=16000, max_seconds=None):
    """A WAV file -> float32 mono samples at `sampling_rate` (resampled when the file has another rate)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No audio file at {path}.")
    try:
        with wave.open(str(path), "rb") as f:
            channels, width, rate, n = f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getnframes()
            if f.getcomptype() != "NONE":
                raise ValueError(f"{path} is compressed ({f.getcompname()}); tinypeft reads 16-bit PCM WAV: {FIX}")
            raw = f.readframes(n)
    except (wave.Error, EOFError) as e:
        raise ValueError(f"{path} is not a WAV file tinypeft can read ({e}); it reads 16-bit PCM WAV "
                         f"(not float, not compressed): {FIX}") from None
    if width != 2:
        raise ValueError(f"{path} has {8 * width}-bit samples; tinypeft reads 16-bit PCM WAV: {FIX}")
    samples = np.frombuffer(raw, dtype="<i2")
    if samples.size == 0:
        raise ValueError(f"{path} holds no audio (0 samples).")
    x = samples.reshape(-1, channels).astype(np.float32).mean(axis=1) / 32768.0  # stereo -> mono by averaging
    if max_seconds is not None and x.size > max_seconds * rate:
        raise ValueError(f"{path} is {x.size / rate:.1f} s long; the model reads at most {max_seconds:g} s at a "
                         f"time. Cut it into pieces, e.g. ffmpeg -i INPUT -f segment -segment_time "
                         f"{int(max_seconds)} -ac 1 -ar 16000 -sample_fmt s16 piece%03d.wav")
    return resample(x, rate, sampling_rate) if rate != sampling_rate else x


def save_wav(path, samples, sampling_rate=16000):
    """float samples in [-1, 1] -> a mono 16-bit PCM WAV file (written atomically)."""
    import os
    import tempfile

    path = Path(path)
    pcm = (np.clip(np.asarray(samples, dtype=np.float64), -1.0, 32767 / 32768) * 32768).round().astype("<i2")
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    with wave.open(tmp, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sampling_rate)
        f.writeframes(pcm.tobytes())
    os.replace(tmp, path)
