"""The course manifest (tinypeft/course/manifest.py) and the files it describes cannot drift apart."""
import importlib
import re
from pathlib import Path

import pytest

from tinypeft.course import COURSE, by_number, header, path, root, tutorials_dir
from tinypeft.course.manifest import TRACKS, split_header

ROOT = Path(__file__).resolve().parent.parent


def test_every_tutorial_file_has_one_entry_and_every_entry_a_file():
    files = sorted(p.name for p in (ROOT / "tutorials").glob("[0-9][0-9]_*.md"))
    listed = [t.file for t in COURSE]
    assert len(listed) == len(set(listed)), "a tutorial is listed twice in COURSE"
    assert sorted(listed) == files, (
        f"not in the manifest: {sorted(set(files) - set(listed))}; listed without a file: "
        f"{sorted(set(listed) - set(files))} (add one Tutorial(...) entry to tinypeft/course/manifest.py)"
    )
    for t in COURSE:
        assert t.file.startswith(t.number + "_"), f"{t.file}: its number is {t.number}"
        assert t.track in TRACKS and t.hours > 0 and t.goals, t.number


@pytest.mark.parametrize("t", COURSE, ids=[t.file for t in COURSE])
def test_tutorial_opens_with_the_header_the_manifest_renders(t):
    text = (ROOT / "tutorials" / t.file).read_text(encoding="utf-8")
    got, _ = split_header(text)
    assert got == header(t), (
        f"{t.file}'s header differs from its manifest entry; edit the entry and run "
        f"`python -m tinypeft.course --write-headers`\n--- file ---\n{got}\n--- manifest ---\n{header(t)}"
    )


def test_prerequisites_come_earlier_in_the_order():
    seen = set()
    for t in COURSE:
        for p in t.after:
            assert p in seen, f"{t.number} needs {p}, which comes later in COURSE (or is not in it)"
        seen.add(t.number)
    main = [t.track for t in COURSE]
    assert main == sorted(main, key=TRACKS.index), "the main track comes first, then the backend track"


def test_the_order_the_course_issue_asks_for():
    """01, 02, 04, 05, 06, (training stack), 10, 07, 08, 09, then 12, 13, 14; 03 and 11 a backend track."""
    order = [t.number for t in COURSE if t.number in {"01", "02", "04", "05", "06", "10", "07", "08", "09", "12", "13", "14"}]
    assert order == ["01", "02", "04", "05", "06", "10", "07", "08", "09", "12", "13", "14"]
    assert {t.number for t in COURSE if t.track == "backend"} == {"03", "11"}
    if any(t.number == "15" for t in COURSE):  # the training stack comes before 10 and 07 use it
        numbers = [t.number for t in COURSE]
        assert numbers.index("06") < numbers.index("15") < numbers.index("10")


def test_by_number():
    assert by_number(7).file == "07_quicktour.md" and by_number("07") is by_number(7)
    with pytest.raises(ValueError, match="tinypeft course list"):
        by_number(99)


def test_course_files_are_found_from_a_checkout():
    assert root() == ROOT and tutorials_dir() == ROOT / "tutorials"
    assert Path(path("tests/fixtures/models/gpt2")).is_dir()
    with pytest.raises(FileNotFoundError, match="not among the course's files"):
        path("tests/fixtures/models/no-such-model")


def test_each_tutorials_checks_live_in_its_own_module():
    """check_x used by tutorial NN is defined in tinypeft.course.checks_NN, and the tutorial imports it from there."""
    for t in COURSE:
        text = (ROOT / "tutorials" / t.file).read_text(encoding="utf-8")
        for module, names in re.findall(r"^from (tinypeft\.course\.checks_\d\d) import (.+)$", text, re.M):
            assert module == f"tinypeft.course.checks_{t.number}", f"{t.file} imports checks from {module}"
            mod = importlib.import_module(module)
            for name in (n.strip() for n in names.split(",")):
                assert callable(getattr(mod, name, None)), f"{t.file}: {module} has no {name}"


def test_every_course_file_a_tutorial_or_check_reads_ships_in_the_wheel():
    """Each path("...") / course_file("...") in the tutorials and checks is covered by COURSE_DATA, which
    setup.py copies into the wheel; an f-string's {...} stands for any name."""
    import fnmatch

    from tinypeft.course.files import COURSE_DATA

    sources = [p.read_text(encoding="utf-8") for p in (ROOT / "tutorials").glob("[0-9][0-9]_*.md")]
    sources += [p.read_text(encoding="utf-8") for p in (ROOT / "tinypeft" / "course").glob("checks_*.py")]
    names = set()
    for text in sources:
        names |= set(re.findall(r"""(?:course_file|path)\(f?["']([^"']+)["']\)""", text))
        names |= set(re.findall(r"""^[A-Z0-9_]+ = f?["']((?:tests|csrc|tutorials)/[^"']+)["']""", text, re.M))
    assert "tests/fixtures/models/gpt2" in names  # the scan finds what it should
    for name in sorted(names):
        matches = ROOT.glob(re.sub(r"\{[^}]*\}", "*", name))
        files = [f for m in matches for f in ([m] if m.is_file() else m.rglob("*")) if f.is_file()]
        assert files, f"{name}: no such file in the repository"
        for f in files:
            rel = f.relative_to(ROOT).as_posix()
            assert any(fnmatch.fnmatch(rel, pat) for pat in COURSE_DATA), f"{rel} (read as {name}) is not in COURSE_DATA"


def test_tutorials_and_checks_read_repository_files_through_course_file():
    """A path like "tests/fixtures/..." resolves only from the repository root; through course_file() (that is,
    tinypeft.course.path) it resolves from any folder and from a wheel. Each such literal in a python block or a
    check is inside course_file(...)/path(...), or names a CONSTANT that is passed to one."""
    fence = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
    sources = {p.name: "\n".join(fence.findall(p.read_text(encoding="utf-8")))
               for p in (ROOT / "tutorials").glob("[0-9][0-9]_*.md")}
    sources.update({p.name: p.read_text(encoding="utf-8") for p in (ROOT / "tinypeft" / "course").glob("checks_*.py")})
    literal = re.compile(r"""(\w+\()?f?["'](?:tests|csrc|bench)/""")  # tutorials/figures is written, not read
    for name, src in sources.items():
        for line in src.splitlines():
            for m in literal.finditer(line):
                if m.group(1) in ("course_file(", "path("):
                    continue
                const = re.match(r"\s*([A-Z][A-Z0-9_]*)\s*=", line)
                assert const and re.search(rf"(course_file|path)\({const.group(1)}\b", src), (
                    f"{name}: {line.strip()!r} reads a repository file by a relative path; wrap it in course_file(...) "
                    "(from tinypeft.course import path as course_file) so it runs from any folder")
