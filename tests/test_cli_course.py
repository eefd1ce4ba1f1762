"""`tinypeft course list / export / check`: the course handed out as notebooks, and a student's answers graded."""
import importlib
import json
import os
import re
from pathlib import Path

import nbformat
import pytest
from cli_helpers import run

from tinypeft.course import COURSE, notebooks
from tinypeft.course.grade import exercises, grade

ROOT = Path(__file__).resolve().parent.parent


def test_list_shows_every_tutorial_in_course_order_with_hours_and_prerequisites(capsys):
    code, out, _ = run(capsys, "course", "list")
    assert code == 0
    rows = re.findall(r"^  (\d\d) +([\d.]+) h  after (\S+)", out, re.M)
    assert [r[0] for r in rows] == [t.number for t in COURSE]
    for (number, hours, after), t in zip(rows, COURSE):
        assert float(hours) == t.hours and after.split(",") == (list(t.after) or ["-"])
    assert "backend track" in out


def test_export_writes_notebooks_and_keeps_the_solutions_apart(tmp_path, capsys):
    students, solutions = tmp_path / "hand-out", tmp_path / "keep"
    code, out, _ = run(capsys, "course", "export", students, "--solutions", solutions)
    assert code == 0, out
    for t in COURSE:
        nb = nbformat.read(students / f"{t.stem}.ipynb", as_version=4)
        nbformat.validate(nb)
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(f"# {t.number} · {t.title}")
        assert any(c.cell_type == "code" for c in nb.cells)
    assert (students / "figures").is_dir() and (students / "README.md").is_file()
    readme = (students / "README.md").read_text(encoding="utf-8")
    assert [m for m in re.findall(r"\((\d\d)_", readme)] == [t.number for t in COURSE]
    assert not list(students.rglob("*.py")), "no solution may land in the folder handed out"
    assert sorted(p.name for p in solutions.iterdir()) == sorted(p.name for p in (ROOT / "tutorials" / "solutions").glob("[0-9][0-9]_*.py"))


def test_export_refuses_solutions_inside_the_hand_out(tmp_path, capsys):
    code, _, err = run(capsys, "course", "export", tmp_path / "out", "--solutions", tmp_path / "out" / "sol")
    assert code == 2 and "inside" in err


def test_export_without_the_course_extra_names_it(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "jupytext", None)  # `import jupytext` raises ImportError
    code, _, err = run(capsys, "course", "export", tmp_path / "out")
    assert code == 2 and "pip install 'tinypeft[course]'" in err


def test_exercises_are_read_from_the_tutorial():
    assert exercises(1) == [
        ("Exercise 1: `exp` for `Value`", "check_value_exp", "value_exp, Value"),
        ("Exercise 2: a topological sort without recursion", "check_topological_order", "topological_order, Value"),
        ("Exercise 3: `unbroadcast`", "check_unbroadcast", "my_unbroadcast"),
    ]
    for t in COURSE:  # each check of tutorial NN is called, once, in one of NN's exercise sections
        if (ROOT / "tinypeft" / "course" / f"checks_{t.number}.py").exists():
            module = importlib.import_module(f"tinypeft.course.checks_{t.number}")
            defined = sorted(n for n in vars(module) if n.startswith("check_"))
            assert sorted(name for _, name, _ in exercises(t.number)) == defined, t.file


def _answers_module(tmp_path, body):
    path = tmp_path / "answers.py"
    path.write_text(body, encoding="utf-8")
    return path


SOLVED_01 = (ROOT / "tutorials" / "solutions" / "01_autograd.py").read_text(encoding="utf-8")


def test_check_grades_a_module_pass_fail_and_not_attempted(tmp_path, capsys):
    """A module defines the answers; the tutorial's own cells supply Value. One right, one wrong, one left out."""
    start = SOLVED_01.index("# ---- Exercise 1 ----")
    value_exp = SOLVED_01[start : SOLVED_01.index("# ---- Exercise 2 ----")]
    path = _answers_module(tmp_path, "import math\n" + value_exp + (
        "\n\ndef topological_order(root):\n    return [root]  # forgets everything below the root\n"))
    code, out, _ = run(capsys, "course", "check", "1", path)
    assert code == 1
    assert re.search(r"Exercise 1: .*pass$", out, re.M), out
    assert re.search(r"Exercise 2: .*FAIL: .*reachable", out, re.M), out
    assert re.search(r"Exercise 3: .*not attempted: the stub still raises NotImplementedError", out, re.M), out
    assert "score: 1 of 3 exercises pass" in out


def test_check_passes_the_solutions_notebook_and_exits_0(tmp_path, capsys):
    """The exported notebook with the solution pasted into each exercise cell: all pass, exit code 0, JSON too."""
    nb = notebooks.to_notebook(ROOT / "tutorials" / "01_autograd.md")
    answers = SOLVED_01[SOLVED_01.index("# ---- Exercise 1 ----") : SOLVED_01.index("# ---- mistakes")]
    nb.cells.append(nbformat.v4.new_code_cell("import math\nimport numpy as np\n" + answers.replace(
        "def unbroadcast(", "def my_unbroadcast(")))
    path = tmp_path / "student.ipynb"
    notebooks.write_notebook(nb, path)
    code, out, _ = run(capsys, "course", "check", "01", path, "--json")
    result = json.loads(out)
    assert code == 0, out
    assert result["score"] == result["out_of"] == 3 and not result["notes"]


def test_check_reports_a_cell_that_raised_and_an_undefined_answer(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("1 / 0"), nbformat.v4.new_code_cell("%matplotlib inline\nx = 1")]
    path = tmp_path / "empty.ipynb"
    nbformat.write(nb, str(path))
    results, notes = grade(14, path)
    assert notes == ["cell 1 raised ZeroDivisionError: division by zero"]
    assert [r.status for r in results] == ["not attempted"] * len(results)
    assert "not defined" in results[0].reason


def test_check_of_an_answer_of_the_wrong_kind_says_so(tmp_path, capsys):
    path = _answers_module(tmp_path, "def my_unbroadcast(grad, shape):\n    return 'summed'\n")
    code, out, _ = run(capsys, "course", "check", "1", path)
    assert code == 1 and "got a str, expected an array of numbers" in out, out


def test_check_refuses_an_unknown_tutorial_or_file(tmp_path, capsys):
    path = _answers_module(tmp_path, "")
    code, _, err = run(capsys, "course", "check", "99", path)
    assert code == 2 and "no tutorial" in err
    code, _, err = run(capsys, "course", "check", "1", tmp_path / "missing.py")
    assert code == 2 and "no such file" in err
    (tmp_path / "answers.txt").write_text("", encoding="utf-8")
    code, _, err = run(capsys, "course", "check", "1", tmp_path / "answers.txt")
    assert code == 2 and ".ipynb" in err


def test_grading_leaves_the_working_folder_and_environment_as_it_found_them(tmp_path):
    before = (os.getcwd(), dict(os.environ))
    grade(1, _answers_module(tmp_path, ""))
    assert (os.getcwd(), dict(os.environ)) == before


@pytest.mark.slow
def test_course_runs_from_an_installed_wheel(tmp_path):
    """pip wheel . -> installed into a folder of its own -> `tinypeft course export` from an empty folder, and a
    tutorial that reads fixtures (10) executed from there: the course's files come from the wheel, not the
    checkout."""
    import subprocess
    import sys

    wheels, site, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "-w", str(wheels), "--no-deps", "-q"],
                   check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("tinypeft-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", str(wheel), "--no-deps", "-q", "--target", str(site)],
                   check=True, cwd=tmp_path)
    env = dict(os.environ, PYTHONPATH=str(site), MPLBACKEND="Agg", TUTORIAL_FIGURES=str(tmp_path / "figures"))
    where = subprocess.run([sys.executable, "-c", "import tinypeft.course as c; print(c.__file__); print(c.root())"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert where[0].startswith(str(site)) and where[1] == str(site / "tinypeft" / "course" / "data"), where
    subprocess.run([sys.executable, "-m", "tinypeft.cli", "course", "export", "hand-out", "--solutions", "keep"],
                   cwd=work, env=env, check=True)
    assert (work / "hand-out" / "10_generation_and_kv_cache.ipynb").exists() and (work / "keep" / "01_autograd.py").exists()
    run_notebook = ("import nbformat; from tinypeft.course import notebooks; "
                    "nb = nbformat.read('hand-out/10_generation_and_kv_cache.ipynb', as_version=4); "
                    "notebooks.execute(nb, cwd='hand-out'); print(notebooks.stream_text(nb))")
    proc = subprocess.run([sys.executable, "-c", run_notebook], cwd=work, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "check_top_k_filter: not done yet" in proc.stdout
