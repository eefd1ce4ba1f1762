"""Tutorials as Jupyter notebooks: converted from their Markdown with jupytext, executed with nbclient.

A tutorial's ```python blocks become code cells and its prose markdown cells (jupytext's "md" format), so
the notebook cannot drift from the Markdown: it is made from it each time. `export` writes the course for
students (the notebooks and their figures, in course order) and, elsewhere, the solutions for the instructor.

jupytext and nbclient are the optional extra `course` (pip install 'tinypeft[course]'); executing a notebook
also needs a Jupyter kernel for Python, ipykernel (part of the extra).
"""
import os
import shutil
import tempfile
from pathlib import Path

from .files import solutions_dir, tutorials_dir
from .manifest import COURSE

__all__ = ["require", "to_notebook", "write_notebook", "execute", "stream_text", "export"]

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def require(module):
    """Import one of the `course` extra's modules, or say which extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"{module} is needed for the course's notebooks but is not installed ({e}); "
            "install the extra: pip install 'tinypeft[course]'"
        ) from None


def to_notebook(md_path):
    """The notebook of one tutorial's Markdown: a code cell per ```python block, markdown cells between."""
    jupytext = require("jupytext")
    nb = jupytext.read(str(md_path), fmt="md")
    nb.metadata.pop("jupytext", None)  # a plain notebook, not one paired with the Markdown
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def write_notebook(nb, path):
    """Write `nb` to `path` atomically (a temporary file in the same folder, then a rename)."""
    nbformat = require("nbformat")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def execute(nb, cwd, timeout=600, kernel_name="python3"):
    """Run every cell of `nb` in a fresh kernel whose working folder is `cwd`; the outputs land in `nb`.
    A cell that raises stops the run with nbclient's CellExecutionError (its message shows the cell)."""
    nbclient = require("nbclient")
    require("ipykernel")
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def stream_text(nb):
    """Everything the executed notebook printed (its stdout and stderr streams), in order."""
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", ()) if out.get("output_type") == "stream")


def _inside(path, folder):
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents


def export(dest, solutions=None, tutorials=None):
    """Write each tutorial as dest/NN_name.ipynb (with dest/figures/), and a README.md in course order.
    With `solutions`, copy the solutions to that folder, which must not be inside `dest` (that is the one
    to hand out). Returns the paths written."""
    dest = Path(dest)
    if solutions is not None and _inside(solutions, dest):
        raise ValueError(f"the solutions folder {solutions} is inside {dest}, which is the one to hand out; "
                         "give a folder outside it")
    entries = COURSE if tutorials is None else tutorials
    source = tutorials_dir()
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for t in entries:
        path = dest / f"{t.stem}.ipynb"
        write_notebook(to_notebook(source / t.file), path)
        written.append(path)
    if (source / "figures").is_dir():
        shutil.copytree(source / "figures", dest / "figures", dirs_exist_ok=True)
    readme = dest / "README.md"
    readme.write_text(course_index(entries), encoding="utf-8")
    written.append(readme)
    if solutions is not None:
        solutions = Path(solutions)
        solutions.mkdir(parents=True, exist_ok=True)
        for t in entries:
            src = solutions_dir() / f"{t.stem}.py"
            if src.exists():
                shutil.copyfile(src, solutions / src.name)
                written.append(solutions / src.name)
    return written


def course_index(entries=COURSE):
    """The course in order, as Markdown: what `export` puts in README.md."""
    lines = ["# The tinypeft course", "",
             "Open the notebooks in this order. Each opens with its goals, prerequisites and student time.", ""]
    track = None
    for t in entries:
        if t.track != track:
            track = t.track
            lines += ["", f"## {'Main track' if track == 'main' else 'Backend track (any time after its prerequisites)'}", ""]
        after = f"; after {', '.join(t.after)}" if t.after else ""
        lines.append(f"1. [{t.number} · {t.title}]({t.stem}.ipynb): about {t.hours:g} h{after}")
    return "\n".join(lines) + "\n"
