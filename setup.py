"""Builds the optional C matmul (csrc/) with cffi; the project metadata lives in pyproject.toml.

The extension is optional: without a working C compiler the install still succeeds, prints one
warning, and tinypeft runs on NumPy alone (tinypeft.backend.cmatmul.available() is False).
"""
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

WARNING = """
*******************************************************************************
WARNING: tinypeft's optional C matmul extension was not built ({reason}).
tinypeft will run on NumPy alone, which is correct but slower for some ops.
To build it, install a C compiler (e.g. `apt-get install gcc`, Xcode command
line tools, or MSVC build tools) and reinstall: pip install -e .
*******************************************************************************
"""


class optional_build_ext(build_ext):
    """build_ext that reports a failed compile instead of failing the install."""

    warned = False

    def run(self):
        try:
            super().run()
        except Exception as e:  # no compiler at all (DistutilsPlatformError) lands here
            self._warn(e)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as e:  # CompileError, LinkError, a missing or broken compiler (OSError)
            self._warn(e)

    def _warn(self, error):
        if not optional_build_ext.warned:
            optional_build_ext.warned = True
            reason = f"{type(error).__name__}: {error}".strip().splitlines()[0]
            sys.stderr.write(WARNING.format(reason=reason))


try:
    import cffi  # noqa: F401  (a build requirement in pyproject.toml; absent only without build isolation)

    options = {"cffi_modules": ["tinypeft/backend/_build_cmatmul.py:ffibuilder"]}
except ImportError:
    sys.stderr.write(WARNING.format(reason="cffi is not installed in the build environment"))
    options = {}

setup(cmdclass={"build_ext": optional_build_ext}, **options)
