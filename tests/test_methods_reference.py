"""tests/fixtures/methods_reference.npz (PEFT's P-tuning encoder and DoRA layer, forward and backward, used by
tutorial 16) is what tests/fixtures/make_methods_reference.py makes with the pinned torch and peft."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parity
def test_methods_reference_is_reproducible(tmp_path):
    spec = importlib.util.spec_from_file_location("make_methods_reference", FIXTURES / "make_methods_reference.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)  # imports torch and peft: fails (not skips) where they are missing
    fresh = np.load(script.main(tmp_path / "methods_reference.npz"))
    committed = np.load(FIXTURES / "methods_reference.npz")
    assert sorted(fresh.files) == sorted(committed.files)
    for key in committed.files:
        if committed[key].dtype.kind in "US":
            continue  # versions
        np.testing.assert_allclose(fresh[key], committed[key], rtol=1e-12, atol=1e-15, err_msg=key)
