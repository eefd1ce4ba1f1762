"""Builds the optional C matmul (csrc/) with cffi; the project metadata lives in pyproject.toml.

The extension is optional: without a working C compiler the install still succeeds, prints one
warning, and tinypeft runs on NumPy alone (tinypeft.backend.cmatmul.available() is False).
"""
import os
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
    """build_ext that reports a failed compile instead of failing the install.

    pip shows a build's output only with -v, so the reason is also left next to the package
    (tinypeft/backend/_cmatmul_build_error.txt), where cmatmul.build_info()["error"] reads it.
    """

    warned = False

    def run(self):
        try:
            super().run()
        except Exception as e:  # no compiler at all (DistutilsPlatformError) lands here
            for ext in self.extensions:
                self._warn(ext, e)
        else:
            for ext in self.extensions:
                for log in self._log_paths(ext):
                    if os.path.exists(log):  # a stale complaint from an earlier failed build
                        os.remove(log)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as e:  # CompileError, LinkError, a missing or broken compiler (OSError)
            self._warn(ext, e)
            # Editable installs copy the built module into the source tree; skip it, there is none.
            self.extensions = [x for x in self.extensions if x is not ext]

    def _log_paths(self, ext):
        package_dir = os.path.join(*ext.name.split(".")[:-1])
        paths = {os.path.join(os.path.dirname(self.get_ext_fullpath(ext.name)), "_cmatmul_build_error.txt")}
        if self.inplace or getattr(self, "editable_mode", False):
            paths.add(os.path.join(package_dir, "_cmatmul_build_error.txt"))
        return paths

    def _warn(self, ext, error):
        reason = f"{type(error).__name__}: {error}".strip().splitlines()[0]
        for log in self._log_paths(ext):
            os.makedirs(os.path.dirname(log), exist_ok=True)
            with open(log, "w") as f:
                f.write(reason + "\n")
        if not optional_build_ext.warned:
            optional_build_ext.warned = True
            sys.stderr.write(WARNING.format(reason=reason))


try:
    import cffi  # noqa: F401  (a build requirement in pyproject.toml; absent only without build isolation)

    options = {"cffi_modules": ["tinypeft/backend/_build_cmatmul.py:ffibuilder"]}
except ImportError:
    sys.stderr.write(WARNING.format(reason="cffi is not installed in the build environment"))
    options = {}

setup(cmdclass={"build_ext": optional_build_ext}, **options)
