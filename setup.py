"""Builds the optional C matmul (csrc/) with cffi and copies the course's files into the package; the project
metadata lives in pyproject.toml.

The extension is optional: without a working C compiler the install still succeeds, prints one
warning, and tinypeft runs on NumPy alone (tinypeft.backend.cmatmul.available() is False).
"""
import glob
import os
import runpy
import shutil
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))

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


class build_py_with_course(build_py):
    """build_py that also copies the course's files (the tutorials, their figures and solutions, the tiny
    fixture models they load: tinypeft/course/files.py's COURSE_DATA) to tinypeft/course/data/ in the build,
    so `tinypeft course export` and the tutorials work from an installed wheel. An editable install reads
    them from the checkout instead."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        patterns = runpy.run_path(os.path.join(HERE, "tinypeft", "course", "files.py"))["COURSE_DATA"]
        data = os.path.join(self.build_lib, "tinypeft", "course", "data")
        for pattern in patterns:
            for src in sorted(glob.glob(os.path.join(HERE, pattern))):
                if os.path.isfile(src) and "__pycache__" not in src:
                    dst = os.path.join(data, os.path.relpath(src, HERE))
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    shutil.copyfile(src, dst)


try:
    import cffi  # noqa: F401  (a build requirement in pyproject.toml; absent only without build isolation)

    options = {"cffi_modules": ["tinypeft/backend/_build_cmatmul.py:ffibuilder"]}
except ImportError:
    sys.stderr.write(WARNING.format(reason="cffi is not installed in the build environment"))
    options = {}

setup(cmdclass={"build_ext": optional_build_ext, "build_py": build_py_with_course}, **options)
