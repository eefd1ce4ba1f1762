"""The course runs: every tutorial top to bottom, and every exercise check against its solution.

A tutorial is tutorials/NN_*.md; it runs as the notebook jupytext makes of it, executed by nbclient in a
fresh kernel whose working folder is an empty temporary one (so it runs from any folder, as a student's
does once tinypeft is installed). A failure names the tutorial and prints the cell that raised. Figures go
to a temporary folder, so a test run leaves the committed tutorials/figures/ alone. Needs the `course`
extra (jupytext, nbclient, ipykernel).

Each exercise's check_... (in tinypeft/course/checks_NN.py) must pass the solution in tutorials/solutions/ and must fail (AssertionError)
an obviously wrong answer; an untouched stub (raising NotImplementedError) returns False, no error.
"""
import codeop
import contextlib
import importlib
import importlib.util
import os
import re
import warnings
from pathlib import Path

import nbclient.exceptions
import nbformat
import pytest

from tinypeft.course import notebooks
from tinypeft.course.manifest import split_header

# Tutorials that take more than 60 s on a 2-core CPU: they run only with `pytest -m slow`.
SLOW = set()  # e.g. {"08_methods.md"}
SLOW.add("08_methods_compared.md")  # about 2 min: five methods trained on MiniLM and on a GPT-2
TIMEOUT_S = 600

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.md"))
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def python_blocks(path):
    return FENCE.findall(path.read_text(encoding="utf-8"))


@contextlib.contextmanager
def environment(**values):
    """os.environ with `values` set (the kernel inherits it when it starts), restored afterwards."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_tutorial(path, tmp_path, hide_matplotlib=False, env=None):
    """Convert the tutorial to a notebook (jupytext) and execute it (nbclient) in a fresh kernel whose working
    folder is an empty temporary one, not the repository: what a student who installed tinypeft runs.
    PYTHONPATH points the kernel at this checkout's tinypeft. Returns what the notebook printed."""
    nb = notebooks.to_notebook(path)
    if hide_matplotlib:  # `import matplotlib` raises ImportError from then on
        nb.cells.insert(0, nbformat.v4.new_code_cell('import sys\nsys.modules["matplotlib"] = None'))
    cwd = tmp_path / "student"
    cwd.mkdir()
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    with environment(MPLBACKEND="Agg", TUTORIAL_FIGURES=str(tmp_path / "figures"), PYTHONPATH=pythonpath, **(env or {})):
        try:
            notebooks.execute(nb, cwd=cwd, timeout=TIMEOUT_S)
        except nbclient.exceptions.CellExecutionError as e:
            pytest.fail(f"{path.name} failed:\n{ANSI.sub('', str(e))[-6000:]}\n--- printed (tail) ---\n"
                        f"{notebooks.stream_text(nb)[-2000:]}")
        except nbclient.exceptions.CellTimeoutError:
            pytest.fail(f"{path.name}: a cell did not finish in {TIMEOUT_S} s")
    return notebooks.stream_text(nb)


def tutorial_params():
    return [pytest.param(p, id=p.name, marks=[pytest.mark.slow] if p.name in SLOW else []) for p in TUTORIALS]


@pytest.mark.parametrize("path", tutorial_params())
def test_tutorial_runs(path, tmp_path):
    assert python_blocks(path), f"{path.name} has no ```python blocks"
    run_tutorial(path, tmp_path)


@pytest.mark.parametrize("path", tutorial_params())
def test_tutorial_header_and_exercises(path):
    """The running time is stated under the course header, and the tutorial ends with 2-4 exercises."""
    text = path.read_text(encoding="utf-8")
    head = "\n".join(split_header(text)[1].splitlines()[:4])
    assert re.search(r"Runs in about [\d.]+ (s|min) on a 2-core CPU", head), f"{path.name}: no running time at the top"
    n = len(re.findall(r"^### Exercise \d", text, re.M))
    assert 2 <= n <= 4, f"{path.name}: {n} exercises, want 2-4 (headings '### Exercise N')"
    for fig in re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", text):
        assert (ROOT / "tutorials" / fig).exists(), f"{path.name} shows {fig}, which is not committed"


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in TUTORIALS])
def test_notebook_has_a_code_cell_per_python_block(path):
    """jupytext reads the Markdown as the tests and students do: no prose line that opens a fence by accident."""
    cells = [c.source for c in notebooks.to_notebook(path).cells if c.cell_type == "code"]
    assert [c.strip() for c in cells] == [b.strip() for b in python_blocks(path)]


def first_repl_error(src):
    """Feed `src` line by line as the classic Python REPL does (a blank line ends a block; a statement at
    column 0 right after an indented one is a syntax error there): (line number, error) or None."""
    buf = []
    for n, line in enumerate(src.splitlines(), 1):
        buf.append(line)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escape sequences and the like: not this test's business
                code = codeop.compile_command("\n".join(buf), "<paste>", "single")
        except (SyntaxError, OverflowError, ValueError) as e:
            return n, f"{type(e).__name__}: {getattr(e, 'msg', e)}"
        if code is not None:
            buf = []
    return None


def test_first_repl_error_is_the_repls():
    assert first_repl_error("def f(x):\n    y = x\n    return y\n\n\nf(1)") is None
    assert first_repl_error("d = {\n    1: 2,\n\n    3: 4,\n}") is None  # inside brackets a blank line is fine
    assert first_repl_error("def f(x):\n    y = x\n\n    return y")[0] == 4  # a blank line inside a body
    assert first_repl_error("for i in range(2):\n    pass\nprint(i)")[0] == 3  # a dedent needs a blank line first


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in TUTORIALS])
def test_code_blocks_paste_into_a_plain_repl(path):
    """Each ```python block pastes into `python` as it is: no blank line inside a def or class, and a blank
    line after an indented block before the next top-level statement."""
    for i, src in enumerate(python_blocks(path), 1):
        err = first_repl_error(src)
        if err:
            n, msg = err
            lines = src.splitlines()
            pytest.fail(f"{path.name}, python block {i}, line {n} ({lines[n - 1]!r}): {msg} when pasted into a "
                        "plain Python REPL; remove blank lines inside def/class bodies, add one after an indented block")


@pytest.mark.slow
@pytest.mark.parametrize("path", tutorial_params())
def test_tutorial_runs_without_matplotlib(path, tmp_path):
    run_tutorial(path, tmp_path, hide_matplotlib=True)


def test_matmul_tutorial_without_a_compiler(tmp_path):
    """03 skips its own C kernels with a message when no C compiler works (tinypeft's is prebuilt)."""
    path = ROOT / "tutorials" / "03_matmul.md"
    out = run_tutorial(path, tmp_path, hide_matplotlib=True, env={"CC": "/nonexistent/cc"})
    assert "no working C compiler" in out


# ---- exercises: each check passes the solution, fails a common mistake, and is patient with a stub ----
# A solution module tutorials/solutions/NN_*.py holds EXERCISES = {check name: arguments of the right
# answer}, MISTAKES = {check name: arguments of a wrong one}, and optionally STUBS = {check name:
# arguments of an untouched stub} (default: the right arguments with the first replaced by a function
# that raises NotImplementedError).

SOLUTIONS = sorted((ROOT / "tutorials" / "solutions").glob("[0-9][0-9]_*.py"))


def load_solution(stem):
    spec = importlib.util.spec_from_file_location(f"solution_{stem}", ROOT / "tutorials" / "solutions" / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _todo(*args, **kwargs):
    raise NotImplementedError


def exercise_params():
    params = []
    for path in SOLUTIONS:
        try:
            names = list(load_solution(path.stem).EXERCISES)
        except Exception as e:  # reported by test_solution_modules_load, not as a collection error for all
            params.append(pytest.param(path.stem, None, id=f"{path.stem}-unloadable", marks=pytest.mark.skip(reason=repr(e))))
            continue
        params += [pytest.param(path.stem, name, id=f"{path.stem}-{name}") for name in names]
    return params


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in SOLUTIONS])
def test_solution_module_loads(path):
    sol = load_solution(path.stem)
    assert sol.EXERCISES and set(sol.MISTAKES) == set(sol.EXERCISES), f"{path.name}: EXERCISES and MISTAKES must name the same checks"


def check_modules():
    """tinypeft/course/checks_NN.py, one per tutorial with exercises."""
    return [
        importlib.import_module(f"tinypeft.course.{p.stem}")
        for p in sorted((ROOT / "tinypeft" / "course").glob("checks_[0-9][0-9].py"))
    ]


def check_named(name):
    found = [getattr(m, name) for m in check_modules() if name in vars(m)]
    assert len(found) == 1, f"{name} is defined in {len(found)} of tinypeft/course/checks_NN.py, want 1"
    return found[0]


@pytest.mark.parametrize("stem, name", exercise_params())
def test_check_passes_the_solution(stem, name):
    assert check_named(name)(*load_solution(stem).EXERCISES[name]) is True


@pytest.mark.parametrize("stem, name", exercise_params())
def test_check_fails_a_mistake(stem, name):
    with pytest.raises(AssertionError) as e:
        check_named(name)(*load_solution(stem).MISTAKES[name])
    assert not NUMPY_REPR.search(str(e.value)), f"{name}: print plain numbers, not NumPy reprs: {e.value}"


def hole_params():
    """(stem, check, k) for the k-th answer in a solution's HOLES: wrong answers an earlier check let pass."""
    params = []
    for path in SOLUTIONS:
        for name, cases in getattr(load_solution(path.stem), "HOLES", {}).items():
            params += [pytest.param(path.stem, name, k, id=f"{path.stem}-{name}-{k}") for k in range(len(cases))]
    return params


@pytest.mark.parametrize("stem, name, k", hole_params())
def test_check_fails_a_hole_it_once_let_through(stem, name, k):
    with pytest.raises(AssertionError):
        check_named(name)(*load_solution(stem).HOLES[name][k])


NUMPY_REPR = re.compile(r"np\.\w+\(|array\(|dtype=")


@pytest.mark.parametrize("stem, name", exercise_params())
def test_check_of_an_answer_of_the_wrong_kind_gives_guidance(stem, name, capsys):
    """An answer that returns a str (or a class without the method the check calls) gets an AssertionError that
    says the check could not use it and what the check expects, not a raw TypeError or AttributeError."""
    args = (lambda *a, **k: "a str",) + tuple(load_solution(stem).EXERCISES[name][1:])
    with pytest.raises(AssertionError) as e:
        check_named(name)(*args)
    msg = str(e.value)
    assert msg, f"{name}: an empty message"
    assert not NUMPY_REPR.search(msg), f"{name}: the message shows a NumPy repr: {msg}"


@pytest.mark.parametrize("stem, name", exercise_params())
def test_check_of_an_untouched_stub_says_not_done(stem, name, capsys):
    sol = load_solution(stem)
    stubs = getattr(sol, "STUBS", {})
    args = stubs[name] if name in stubs else (_todo,) + tuple(sol.EXERCISES[name][1:])
    assert check_named(name)(*args) is False
    assert "not done yet" in capsys.readouterr().out


def test_every_check_has_a_solution_and_a_mistake():
    names = {n for m in check_modules() for n, f in vars(m).items() if n.startswith("check_") and callable(f)}
    solved = {p.values[1] for p in exercise_params() if p.values[1] is not None}
    assert names == solved, f"checks without a solution: {sorted(names - solved)}; unknown: {sorted(solved - names)}"
    stems = {p.stem for p in SOLUTIONS}
    for path in TUTORIALS:
        if "check_" in path.read_text(encoding="utf-8"):
            assert path.stem in stems, f"{path.name} has exercises but no tutorials/solutions/{path.stem}.py"
