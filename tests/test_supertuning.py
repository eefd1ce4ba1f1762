"""Super-Tuning: the sparse support (largest / smallest magnitudes), Supra's LoRA, merge, int32 positions on disk."""
import numpy as np
import pytest

import tinypeft as tp
from adapter_checks import check_second_adapter
from custom_models import MLP, inputs
from tinypeft.checkpoint_io import read_header
from tinypeft.peft import PeftModel, SupertuningConfig, get_peft_model
from tinypeft.testing import gradcheck


@pytest.mark.parametrize("select_top, r", [(True, None), (False, None), (True, 2)])
def test_supertuning_adds_values_at_the_chosen_positions_and_merges(select_top, r, tmp_path):
    cfg = dict(target_modules=["lin0"], sparsity=0.75, select_top=select_top, r=r)
    pm = get_peft_model(MLP().eval(), SupertuningConfig(**cfg, init_weights=False)).eval()
    layer, x = pm.base_model.model.lin0, inputs("MLP")
    W, b = layer.base_layer.weight.numpy().copy(), layer.base_layer.bias.numpy()
    idx = layer.supertuning_indices["default"].numpy()
    assert idx.dtype == np.int32 and idx.size == 50  # 25% of 200 entries
    chosen = np.abs(W).reshape(-1)[idx]
    rest = np.delete(np.abs(W).reshape(-1), idx)
    assert (chosen.min() > rest.max()) if select_top else (chosen.max() < rest.min())
    delta = np.zeros(W.size, dtype=np.float32)
    delta[idx] = layer.supertuning_values["default"].detach().numpy()
    delta = delta.reshape(W.shape)
    if r:
        A, B = (getattr(layer, f"supertuning_lora_{k}")["default"].weight.detach().numpy() for k in "AB")
        delta = delta + (4 / 2) * B @ A  # lora_alpha defaults to 2 r
    with tp.no_grad():
        np.testing.assert_allclose(layer(x).numpy(), x.numpy() @ (W + delta).T + b, rtol=1e-4, atol=1e-3)
        y = pm(x).numpy()
        pm.merge_adapter()
        np.testing.assert_allclose(layer.base_layer.weight.numpy(), W + delta, rtol=1e-5, atol=1e-6)
        pm.unmerge_adapter()
    np.testing.assert_allclose(layer.base_layer.weight.numpy(), W, rtol=1e-5, atol=1e-6)
    pm.save_pretrained(tmp_path)
    header, _ = read_header(tmp_path / "adapter_model.safetensors")
    assert header["base_model.model.lin0.supertuning_indices"]["dtype"] == "I32"
    fresh = MLP().eval()
    fresh.load_state_dict({k.replace("base_model.model.", "").replace(".base_layer", ""): v
                           for k, v in pm.state_dict().items() if "supertuning" not in k})
    with tp.no_grad():
        np.testing.assert_allclose(PeftModel.from_pretrained(fresh, tmp_path).eval()(x).numpy(), y, rtol=1e-5,
                                   atol=1e-6)


def test_supertuning_gradients_match_finite_differences():
    pm = get_peft_model(MLP(), SupertuningConfig(target_modules=["lin0"], sparsity=0.9, r=2,
                                                 init_weights=False)).double()
    layer = pm.base_model.model.lin0
    x = tp.tensor(np.random.default_rng(0).standard_normal((3, 10)))
    params = [p for _, p in layer.named_parameters() if p.requires_grad]
    assert len(params) == 3
    assert gradcheck(lambda *ps: layer(x), params)


def test_supertuning_second_adapter(tmp_path):
    check_second_adapter(lambda: SupertuningConfig(target_modules=["lin0"], sparsity=0.5, init_weights=False),
                         tmp_path)


def test_supertuning_refuses_bad_configs():
    with pytest.raises(ValueError, match="sparsity"):
        SupertuningConfig(sparsity=1.0)
    with pytest.raises(ValueError, match="lora_alpha"):
        SupertuningConfig(lora_alpha=4)
    with pytest.raises(ValueError, match="no trainable entries"):
        get_peft_model(MLP(), SupertuningConfig(target_modules=["lin1"], sparsity=0.99))
