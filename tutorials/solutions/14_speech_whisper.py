"""Solutions to tutorials/14_speech_whisper.md's exercises (and the mistakes their checks must catch).

    python tutorials/solutions/14_speech_whisper.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tinypeft.course.checks_14 import check_conv_output_length, check_hertz_to_mel  # noqa: E402


# ---- Exercise 1 ----
def hertz_to_mel(freq):
    freq = np.asarray(freq, dtype=np.float64)
    linear = 3.0 * freq / 200.0  # 15 mels at 1 kHz
    log = 15.0 + np.log(np.maximum(freq, 1e-10) / 1000.0) * 27.0 / np.log(6.4)
    return np.where(freq >= 1000.0, log, linear)


# ---- Exercise 2 ----
def conv_output_length(L, kernel_size, stride, padding, dilation):
    # the last window must start at or before L + 2p - (d (k - 1) + 1)
    return (L + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


EXERCISES = {
    "check_hertz_to_mel": (hertz_to_mel,),
    "check_conv_output_length": (conv_output_length,),
}


# ---- mistakes the checks must catch ----
def _htk_mel(freq):  # the HTK formula: a different mel scale, not Whisper's
    return 2595.0 * np.log10(1.0 + np.asarray(freq, dtype=np.float64) / 700.0)


def _length_without_dilation(L, kernel_size, stride, padding, dilation):
    return (L + 2 * padding - (kernel_size - 1) - 1) // stride + 1


MISTAKES = {
    "check_hertz_to_mel": (_htk_mel,),
    "check_conv_output_length": (_length_without_dilation,),
}

if __name__ == "__main__":
    for name, args in EXERCISES.items():
        globals()[name](*args)
