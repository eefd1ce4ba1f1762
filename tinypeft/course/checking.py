"""Checks for the tutorials' exercises. Each takes your answer, tries it against an independent
reference (finite differences, NumPy, or tinypeft's own op), prints "passed", and returns True.

A wrong answer raises AssertionError saying what is off. So does an answer of the wrong kind (a list where an
array is expected, a function that raises TypeError): the message says what went wrong where, and what the
check expects, instead of a bare traceback from inside the check. A stub you have not filled in yet (it
raises NotImplementedError) only prints "not done yet" and returns False, so a tutorial runs top to bottom
before you have done its exercises. Numbers in the messages print plainly (3, not np.int64(3)).

    from tinypeft.course.checks_01 import check_value_exp
    check_value_exp(value_exp, Value)

tinypeft/course/checks_NN.py holds tutorial NN's checks; this module holds what they share.
"""
import functools
import os
import traceback

import numpy as np

from ..testing import central_difference

_COURSE = os.path.dirname(os.path.abspath(__file__))
_LIBRARIES = tuple(os.path.dirname(os.path.abspath(m.__file__)) for m in (np, functools))  # numpy, the stdlib
_TINYPEFT = os.path.dirname(_COURSE)


def _printing_plainly():
    """NumPy 2 prints a scalar's repr as np.int64(3); its 1.25 style prints 3."""
    return np.printoptions(legacy="1.25") if int(np.__version__.split(".")[0]) >= 2 else np.printoptions()


def _whose(error):
    """Who raised `error`: ("your code", "file, line N"), ("tinypeft", "file, line N") for the library called by
    the check, or ("the check", None); judged by the innermost frame that is not NumPy's or the stdlib's."""
    library = None
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = os.path.abspath(frame.filename)
        where = f"{os.path.basename(frame.filename)}, line {frame.lineno}"
        if path.startswith(_COURSE):
            return ("tinypeft", library) if library else ("the check", None)
        if path.startswith(_TINYPEFT):
            library = library or where
            continue
        if path.startswith(_LIBRARIES) or "site-packages" in path:
            continue
        return "your code", where
    return "the check", None


def _guidance(fn, error):
    who, where = _whose(error)
    expects = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    what = f"{type(error).__name__}{': ' + text if text else ''}"
    if who == "your code":
        head = f"{fn.__name__}: your code raised {what} ({where})"
    elif who == "tinypeft":
        head = (f"{fn.__name__}: tinypeft raised {what} ({where}) while the check ran; if your answer is of the "
                "kind the check expects, the fault is not yours (the traceback above says where)")
    else:
        head = f"{fn.__name__}: the check could not use what your code gave it ({what}); is it of the right kind?"
    return f"{head}\n  the check expects: {expects}"


def _exercise(fn):
    @functools.wraps(fn)
    def check(*args, **kwargs):
        try:
            with _printing_plainly():
                fn(*args, **kwargs)
        except NotImplementedError:
            print(f"{fn.__name__}: not done yet - fill in the stub above, then run this cell again.")
            return False
        except (AssertionError, ImportError, MemoryError):
            raise  # a wrong answer (the message says what is off), or the machine lacks something
        except Exception as e:  # an answer of the wrong kind, or one that crashes: say so, not a raw traceback
            raise AssertionError(_guidance(fn, e)) from e
        print(f"{fn.__name__}: passed")
        return True

    return check


def _is_tensor(x):
    return type(x).__name__ == "Tensor" and hasattr(x, "numpy")


def _array(got, what, dtype=None):
    """`got` as a NumPy array of numbers, or an AssertionError that says what it is instead."""
    assert got is not None, f"{what}: got None; return the values"
    assert not _is_tensor(got), f"{what}: got a tinypeft Tensor; return a NumPy array (tensor.numpy())"
    kind = type(got).__name__
    try:
        arr = np.asarray(got)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.dtype.kind not in "biuf":
        raise AssertionError(f"{what}: got a {kind}, expected an array of numbers")
    return arr if dtype is None else arr.astype(dtype)


def _predicted(prediction):
    """A predict-then-run exercise: `prediction = None` (the stub) is not done yet."""
    if prediction is None or prediction is Ellipsis:
        raise NotImplementedError
    return prediction


def _close(got, want, what, rtol=1e-6, atol=1e-8):
    got = _array(got, what, np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    if not np.allclose(got, want, rtol=rtol, atol=atol):
        i = tuple(int(n) for n in np.unravel_index(np.argmax(np.abs(got - want)), got.shape)) if got.ndim else ()
        at = f" at {i}" if got.ndim else ""
        raise AssertionError(f"{what}: got {got[i]:.8g}{at}, expected {want[i]:.8g}")


def _central_difference(f, x, eps=1e-6):
    """d f(x) / dx for a scalar function of a float64 array, one coordinate at a time."""
    x = np.array(x, dtype=np.float64)
    return central_difference(lambda: f(x), x, eps)

