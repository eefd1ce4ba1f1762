"""Collection rules shared by the whole suite."""
import re

_PARITY_MODULE = re.compile(r"^pytestmark = pytest\.mark\.parity\b", re.M)


def pytest_ignore_collect(collection_path, config):
    """A module marked parity as a whole may import torch, transformers or peft at its top. A run that
    deselects parity (the default, `-m 'not parity ...'`) does not import it at all, so the default suite
    needs none of them; `-m parity` does import it, and fails without the references, as it must."""
    if collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    if "not parity" not in (config.getoption("markexpr") or ""):
        return None
    if _PARITY_MODULE.search(collection_path.read_text(encoding="utf-8")):
        return True
    return None
