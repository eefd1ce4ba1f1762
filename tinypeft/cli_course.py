"""`tinypeft course`: the course's tutorials listed, exported as notebooks, and a student's answers graded.

    tinypeft course list                               # teaching order, student hours, prerequisites
    tinypeft course export DIR [--solutions SOLDIR]    # DIR: notebooks to hand out; SOLDIR: the solutions
    tinypeft course check N PATH [--json]              # tutorial N's checks on a notebook or module

`check` exits 0 when every exercise passes, 1 otherwise.
"""
import sys

__all__ = ["add_course_parser", "cmd_course"]


def add_course_parser(sub, formatter_class):
    p = sub.add_parser("course", help="the course: list the tutorials, export them as notebooks, grade answers",
                       description=__doc__.split("\n\n")[0], formatter_class=formatter_class)
    course = p.add_subparsers(dest="course_command", metavar="action")
    course.required = True
    course.add_parser("list", help="the tutorials in teaching order, with student time and prerequisites",
                      formatter_class=formatter_class)
    e = course.add_parser("export", help="write every tutorial as a Jupyter notebook (needs the `course` extra)",
                          description="Write DIR/NN_name.ipynb for every tutorial (made from its Markdown by jupytext), "
                          "DIR/figures/ and DIR/README.md (the order). With --solutions, copy the exercises' solutions "
                          "to SOLDIR, which must be outside DIR: hand out DIR, keep SOLDIR.",
                          formatter_class=formatter_class)
    e.add_argument("dir", metavar="DIR", help="folder for the students' notebooks (made if missing)")
    e.add_argument("--solutions", metavar="SOLDIR", default=None,
                   help="also copy the solutions here (a folder outside DIR)")
    c = course.add_parser("check", help="grade a student's notebook or module on tutorial N's exercises",
                          description="Run tutorial N's exercise checks on PATH, a notebook (.ipynb: its code cells run "
                          "in order) or a module (.py: it runs after the tutorial's own cells and defines the answers "
                          "under the tutorial's names). Prints pass / fail / not attempted with the reason for each "
                          "exercise; exits 0 only if all pass.", formatter_class=formatter_class)
    c.add_argument("number", metavar="N", help="the tutorial's number, e.g. 1 or 01")
    c.add_argument("path", metavar="PATH", help="the student's .ipynb or .py")
    c.add_argument("--json", action="store_true", help="print the results as one JSON object")
    c.add_argument("--show-output", action="store_true", help="also print what the student's code printed")


def cmd_course(args):
    return {"list": _list, "export": _export, "check": _check}[args.course_command](args)


def _list(args):
    from .course import COURSE

    track = None
    for t in COURSE:
        if t.track != track:
            track = t.track
            print("main track" if track == "main" else "\nbackend track (any time after its prerequisites)")
        after = ",".join(t.after) if t.after else "-"
        print(f"  {t.number}  {t.hours:>4g} h  after {after:<8}  {t.title}")
    print(f"\n{len(COURSE)} tutorials, about {sum(t.hours for t in COURSE):g} hours; "
          "`tinypeft course export DIR` writes them as notebooks")
    return 0


def _export(args):
    from pathlib import Path

    from .course import notebooks

    try:
        written = notebooks.export(args.dir, solutions=args.solutions)
    except ImportError as e:
        print(f"tinypeft course export: {e}", file=sys.stderr)
        return 2
    nbs = [p for p in written if p.suffix == ".ipynb"]
    sols = [p for p in written if p.suffix == ".py"]
    print(f"wrote {len(nbs)} notebooks, their figures and README.md (the order) to {Path(args.dir)}")
    if args.solutions is not None:
        print(f"wrote {len(sols)} solutions to {Path(args.solutions)}: keep them, hand out {Path(args.dir)}")
    return 0


def _check(args):
    import io
    import os

    from .course import grade

    if not os.path.isfile(args.path):
        raise FileNotFoundError(f"{args.path}: no such file (give the student's .ipynb or .py)")
    log = io.StringIO()
    results, notes = grade.grade(args.number, args.path, log=log)
    if args.show_output:
        print(log.getvalue(), end="")
    print(grade.as_json(args.number, args.path, results, notes) if args.json
          else grade.report(args.number, args.path, results, notes))
    return 0 if all(r.status == grade.PASS for r in results) else 1
