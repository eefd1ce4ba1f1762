"""Checks every weight-adapter method must pass on PEFT's MLP, shared by the per-method test files."""
import numpy as np

import tinypeft as tp
from custom_models import MLP, inputs
from tinypeft.peft import PeftModel, get_peft_model


def check_second_adapter(make_config, tmp_path):
    """A second adapter waits until set_adapter, then alone trains and changes the output; it saves to its own
    folder and loads back onto the base model; deleting it restores the first."""
    pm = get_peft_model(MLP().eval(), make_config()).eval()
    x = inputs("MLP")
    with tp.no_grad():
        first = pm(x).numpy()
        pm.add_adapter("other", make_config())
        np.testing.assert_allclose(pm(x).numpy(), first, rtol=1e-6)
        pm.set_adapter("other")
        second = pm(x).numpy()
    assert not np.allclose(second, first)
    trained = [n for n, p in pm.named_parameters() if p.requires_grad]
    assert trained and all(".other" in n for n in trained), trained
    pm.save_pretrained(tmp_path)
    base = {k.replace("base_model.model.", "").replace(".base_layer", ""): v for k, v in pm.state_dict().items()
            if f".{pm.base_model.prefix}" not in k and "._" not in k}
    pm.delete_adapter("other")
    pm.set_adapter("default")
    fresh = MLP().eval()
    fresh.load_state_dict(base)
    with tp.no_grad():
        np.testing.assert_allclose(pm(x).numpy(), first, rtol=1e-6)
        loaded = PeftModel.from_pretrained(fresh, tmp_path / "other").eval()
        np.testing.assert_allclose(loaded(x).numpy(), second, rtol=1e-5, atol=1e-6)
