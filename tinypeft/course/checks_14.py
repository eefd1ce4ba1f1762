"""Checks for tutorials/14_speech_whisper.md's exercises (see checking.py for how checks behave)."""
import numpy as np

from .checking import _close, _exercise


@_exercise
def check_hertz_to_mel(hertz_to_mel):
    """hertz_to_mel(freq) is Slaney's mel scale (linear to 1 kHz, then logarithmic), on floats and arrays."""
    from tinypeft.models.feature_extraction_whisper import hertz_to_mel as reference

    freqs = np.array([0.0, 100.0, 440.0, 999.0, 1000.0, 1500.0, 4000.0, 8000.0])
    for f in freqs:
        got = hertz_to_mel(float(f))
        assert got is not None, "hertz_to_mel returned None; return the mels"
        _close(got, reference(f), f"hertz_to_mel({f:g})")
    _close(hertz_to_mel(freqs.copy()), reference(freqs), "hertz_to_mel on an array")


@_exercise
def check_conv_output_length(conv_output_length):
    """conv_output_length(L, kernel_size, stride, padding, dilation) equals the length conv1d returns."""
    import tinypeft as tp

    cases = [(3000, 3, 1, 1, 1), (3000, 3, 2, 1, 1), (17, 5, 3, 0, 1), (20, 3, 1, 2, 3), (9, 4, 2, 1, 2), (7, 1, 1, 0, 1)]
    for L, k, s, p, d in cases:
        got = conv_output_length(L, k, s, p, d)
        assert got is not None, "conv_output_length returned None; return an int"
        want = tp.functional.conv1d(tp.zeros(1, 1, L), tp.zeros(1, 1, k), stride=s, padding=p, dilation=d).shape[-1]
        assert int(got) == want, (f"length {L}, kernel {k}, stride {s}, padding {p}, dilation {d}: got {got}, "
                                  f"conv1d gives {want}")
