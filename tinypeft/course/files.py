"""Where the course's files are: the repository's folders in a checkout, their copies in an installed wheel.

A tutorial reads files that live in the repository (the tiny models in tests/fixtures/, csrc/'s kernel),
always through `path("tests/fixtures/models/gpt2")`, so it runs from any folder: in a checkout the path is
the repository's, in a wheel it is the copy setup.py's build step put in tinypeft/course/data/ (the list of
what is copied is COURSE_DATA below; setup.py reads it).
"""
from pathlib import Path

__all__ = ["root", "path", "tutorials_dir", "solutions_dir", "COURSE_DATA"]

# What a wheel carries for the course, as glob patterns relative to the repository root (setup.py copies
# them to tinypeft/course/data/). A tutorial that reads another repository file adds its pattern here;
# tests/test_course.py fails for a path("...") in a tutorial or a check that no pattern covers.
COURSE_DATA = (
    "tutorials/[0-9][0-9]_*.md",
    "tutorials/figures/*.png",
    "tutorials/solutions/[0-9][0-9]_*.py",
    "csrc/*.h",
    "csrc/*.c",
    "tests/fixtures/models/*/*",  # the tiny random models: config, weights, tokenizer files
    "tests/fixtures/peft/*.json",
    "tests/fixtures/peft/*/*",  # adapters the real PEFT made on them, with their reference outputs
    "tests/fixtures/reference/minilm_embeddings.npz",
    "tests/fixtures/reference/gpt2.npz",  # transformers' logits and loss for the tiny GPT-2 (tutorial 15)
    "tests/fixtures/optim_reference.npz",  # torch's AdamW steps (tutorial 15)
    "tests/fixtures/methods_reference.npz",  # PEFT's outputs for the methods built by hand (tutorial 16)
    "tutorials/experiments/*.json",  # tutorial 08's sweep of methods, seeds and learning rates
)

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent.parent  # tinypeft/course/ -> the repository root, in a checkout


def root():
    """The folder that holds tutorials/, tests/fixtures/ and csrc/: the checkout, or the wheel's copy."""
    if (_CHECKOUT / "tutorials").is_dir() and (_CHECKOUT / "tinypeft").is_dir():
        return _CHECKOUT
    data = _PACKAGE / "data"
    if (data / "tutorials").is_dir():
        return data
    raise FileNotFoundError(
        f"the course's files are neither in a checkout ({_CHECKOUT}) nor in the installed package ({data}); "
        "reinstall tinypeft from its repository or from a wheel built by `pip wheel .`"
    )


def path(relative):
    """The absolute path of a course file named as in the repository, e.g. path("tests/fixtures/models/gpt2")."""
    p = root() / relative
    if not p.exists():
        raise FileNotFoundError(f"{relative} is not among the course's files (looked in {root()})")
    return str(p)


def tutorials_dir():
    return root() / "tutorials"


def solutions_dir():
    return root() / "tutorials" / "solutions"
