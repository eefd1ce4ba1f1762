"""The autograder behind `tinypeft course check N PATH`: tutorial N's checks run on a student's answers.

PATH is either the student's notebook (.ipynb, the one `tinypeft course export` wrote, filled in) or a
module (.py) that defines the answers under the tutorial's names. A notebook's code cells run in order in one
namespace; a module runs after the tutorial's own cells, so it only needs the answers (the tutorial supplies
what they use, e.g. tutorial 01's `Value`). The calls of the checks themselves are taken out of the student's
cells; each exercise's check is then called as the tutorial calls it (the arguments are read from the
tutorial's exercise cell), with what the student's code defined.

Every exercise ends as one Result: "pass", "fail" (the check's AssertionError, or the error the answer
raised) or "not attempted" (the stub still raises NotImplementedError, or the answer's name is undefined).
"""
import ast
import contextlib
import io
import json
import os
import re
import tempfile
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from .files import tutorials_dir
from .manifest import by_number

__all__ = ["Result", "exercises", "grade", "load_answers"]

PASS, FAIL, NOT_ATTEMPTED = "pass", "fail", "not attempted"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


@dataclass
class Result:
    exercise: str  # "Exercise 1: `exp` for `Value`"
    check: str  # "check_value_exp"
    status: str  # PASS, FAIL or NOT_ATTEMPTED
    reason: str = ""


def _is_check_call(node):
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
            and node.value.func.id.startswith("check_"))


def _check_calls(src):
    """(name, source of its arguments) of each `check_...(...)` statement in `src`, nested ones included."""
    calls = []
    for node in ast.walk(ast.parse(src)):
        if _is_check_call(node):
            call = node.value
            args = [ast.get_source_segment(src, a) for a in call.args]
            args += [f"{k.arg}={ast.get_source_segment(src, k.value)}" for k in call.keywords]
            calls.append((call.func.id, ", ".join(args), node.lineno))
    return [(name, args) for name, args, _ in sorted(calls, key=lambda c: c[2])]


class _DropCheckCalls(ast.NodeTransformer):
    def visit_Expr(self, node):
        return ast.copy_location(ast.Pass(), node) if _is_check_call(node) else node


def exercises(number):
    """[(exercise heading, check name, argument source)] of tutorial `number`, in the tutorial's order."""
    t = by_number(number)
    text = (tutorials_dir() / t.file).read_text(encoding="utf-8")
    found = []
    parts = re.split(r"^### (Exercise \d+.*)$", text, flags=re.M)
    for heading, body in zip(parts[1::2], parts[2::2]):
        for block in FENCE.findall(body):
            for name, args in _check_calls(block):
                found.append((heading.strip(), name, args))
    return found


def _without_check_calls(src):
    """`src` with its check_...(...) statements (and IPython's %magics / !shell lines) taken out."""
    src = "\n".join("pass  # " + line if line.lstrip().startswith(("%", "!")) else line for line in src.splitlines())
    return ast.fix_missing_locations(_DropCheckCalls().visit(ast.parse(src)))


def _cells(number, path):
    """The code to run, as (label, source) pairs: the notebook's code cells, or the tutorial's then the module."""
    path = Path(path)
    if path.suffix == ".ipynb":
        with open(path, encoding="utf-8") as f:
            nb = json.load(f)
        cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
        return [(f"cell {i}", "".join(c["source"]) if isinstance(c["source"], list) else c["source"])
                for i, c in enumerate(cells, 1)]
    if path.suffix == ".py":
        t = by_number(number)
        blocks = FENCE.findall((tutorials_dir() / t.file).read_text(encoding="utf-8"))
        return [(f"tutorial {t.number}'s block {i}", b) for i, b in enumerate(blocks, 1)] + \
               [(path.name, path.read_text(encoding="utf-8"))]
    raise ValueError(f"{path}: give a notebook (.ipynb) or a module (.py)")


def load_answers(number, path, log=None):
    """Run the student's code (see the module docstring); returns (namespace, notes on cells that raised)."""
    ns = {"__name__": "__main__"}
    notes = []
    log = log if log is not None else io.StringIO()
    env = {"MPLBACKEND": os.environ.get("MPLBACKEND", "Agg")}
    with tempfile.TemporaryDirectory(prefix="tinypeft-grade-") as figures:
        env["TUTORIAL_FIGURES"] = figures
        old_env = {k: os.environ.get(k) for k in env}
        old_cwd = os.getcwd()
        os.environ.update(env)
        os.chdir(Path(path).resolve().parent)  # where the student ran it: relative files resolve as they did
        try:
            for label, src in _cells(number, path):
                try:
                    code = compile(_without_check_calls(src), f"<{label}>", "exec")
                    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                        exec(code, ns)
                except Exception as e:  # a cell that raises: the student's to see; later cells still run
                    notes.append(f"{label} raised {type(e).__name__}: {_first_line(e)}")
        finally:
            os.chdir(old_cwd)
            for k, v in old_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return ns, notes


def _first_line(e):
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def grade(number, path, log=None):
    """Grade the student's notebook or module at `path` on tutorial `number`: ([Result], notes)."""
    import importlib

    t = by_number(number)
    found = exercises(t.number)
    if not found:
        raise ValueError(f"tutorial {t.number} has no checked exercises")
    module = importlib.import_module(f"tinypeft.course.checks_{t.number}")
    ns, notes = load_answers(t.number, path, log=log)
    results = []
    for heading, name, args in found:
        check = getattr(module, name)
        try:
            values = eval(f"({args},)", ns)  # noqa: S307 - the tutorial's own argument list, in the student's namespace
        except NameError as e:
            results.append(Result(heading, name, NOT_ATTEMPTED, f"{e}: your code must define it, as the tutorial's cell does"))
            continue
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                ok = check(*values)
        except AssertionError as e:
            results.append(Result(heading, name, FAIL, _first_line(e) if str(e) else "a check failed"))
            continue
        except Exception as e:  # the answer itself raised: say where
            where = traceback.extract_tb(e.__traceback__)[-1]
            results.append(Result(heading, name, FAIL, f"your code raised {type(e).__name__}: {_first_line(e)} "
                                                       f"({os.path.basename(where.filename)}, line {where.lineno})"))
            continue
        if ok is True:
            results.append(Result(heading, name, PASS))
        else:
            results.append(Result(heading, name, NOT_ATTEMPTED, "the stub still raises NotImplementedError"))
    return results, notes


def report(number, path, results, notes):
    """The text `tinypeft course check` prints."""
    t = by_number(number)
    lines = [f"tutorial {t.number} · {t.title}: {path}"]
    width = max(len(r.exercise) for r in results)
    for r in results:
        tail = f": {r.reason}" if r.reason else ""
        lines.append(f"  {r.exercise:<{width}}  {r.status.upper() if r.status == FAIL else r.status}{tail}")
    passed = sum(r.status == PASS for r in results)
    lines.append(f"score: {passed} of {len(results)} exercises pass")
    for n in notes:
        lines.append(f"  note: {n}")
    return "\n".join(lines)


def as_json(number, path, results, notes):
    return json.dumps({"tutorial": by_number(number).number, "path": str(path), "results": [asdict(r) for r in results],
                       "score": sum(r.status == PASS for r in results), "out_of": len(results), "notes": notes})
