"""The course: the tutorials' manifest, their exercise checks, and where their files are.

    tinypeft course list                      # the tutorials in teaching order, times, prerequisites
    from tinypeft.course.checks_01 import check_value_exp

manifest.py   COURSE: each tutorial's file, title, goals, prerequisites, student time, in teaching order
checking.py   how a check behaves (passed / not done yet / an AssertionError saying what is off)
checks_NN.py  tutorial NN's exercise checks
files.py      path("tests/fixtures/models/gpt2"): a course file, from a checkout or an installed wheel
"""
from .files import path, root, solutions_dir, tutorials_dir
from .manifest import COURSE, Tutorial, by_number, header

__all__ = ["COURSE", "Tutorial", "by_number", "header", "path", "root", "solutions_dir", "tutorials_dir"]
