"""LoRA behaviours where tinypeft followed PEFT too loosely (issue 14), and LoRA on Conv1d/Conv2d."""
import warnings

import numpy as np
import pytest

import tinypeft as tp
from custom_models import MLP, ModelConv1D, ModelConv2D, ModelConv2DGroups, ModelEmbConv1D, inputs
from tinypeft.peft import LoraConfig, get_peft_model
from tinypeft.peft.tuners.lora.conv import Conv1d, Conv2d


def out(model, name="MLP"):
    with tp.no_grad():
        return model(inputs(name)).numpy()


def test_add_weighted_adapter_combines_embedding_layers():
    pm = get_peft_model(ModelEmbConv1D().eval(), LoraConfig(r=2, target_modules=["emb"], init_lora_weights=False))
    pm.add_adapter("b", LoraConfig(r=2, lora_alpha=4, target_modules=["emb"], init_lora_weights=False))
    layer = pm.base_model.model.emb
    delta = {a: layer.get_delta_weight(a) for a in ("default", "b")}
    pm.add_weighted_adapter(["default", "b"], [0.7, 0.3], "cat_ab", combination_type="cat")
    np.testing.assert_allclose(layer.get_delta_weight("cat_ab"), 0.7 * delta["default"] + 0.3 * delta["b"],
                               rtol=1e-5, atol=1e-6)


def test_add_weighted_adapter_keeps_the_first_config_and_sizes_cat_by_rank_pattern():
    cfg = dict(target_modules=["lin0", "lin1"], exclude_modules=["lin1"], use_rslora=True,
               rank_pattern={"lin0": 4}, init_lora_weights=False)
    pm = get_peft_model(MLP().eval(), LoraConfig(r=2, **cfg))
    pm.add_adapter("b", LoraConfig(r=2, **cfg))
    layer = pm.base_model.model.lin0
    delta = {a: layer.get_delta_weight(a) for a in ("default", "b")}
    pm.add_weighted_adapter(["default", "b"], [1.0, 0.5], "cat_ab", combination_type="cat")
    new = pm.peft_config["cat_ab"]
    assert new.r == new.lora_alpha == 8 and new.use_rslora and new.exclude_modules == {"lin1"}
    assert new.rank_pattern == {} and not hasattr(pm.base_model.model.lin1, "lora_A")
    # rsLoRA scaling of the new adapter is r / sqrt(r) = sqrt(8), applied on top of the combined factors
    np.testing.assert_allclose(layer.get_delta_weight("cat_ab"),
                               np.sqrt(8) * (delta["default"] + 0.5 * delta["b"]), rtol=1e-5, atol=1e-6)


def test_add_weighted_adapter_refuses_adapters_sharing_modules_to_save():
    pm = get_peft_model(MLP(), LoraConfig(target_modules=["lin0"], modules_to_save=["lin1"]))
    pm.add_adapter("b", LoraConfig(target_modules=["lin0"], modules_to_save=["lin1"]))
    with pytest.raises(ValueError, match="same module with modules_to_save"):
        pm.add_weighted_adapter(["default", "b"], [0.5, 0.5], "mix", combination_type="linear")
    assert "mix" not in pm.peft_config


def test_add_adapter_all_linear_does_not_wrap_lora_inner_layers():
    pm = get_peft_model(MLP(), LoraConfig(target_modules="all-linear"))
    pm.add_adapter("b", LoraConfig(target_modules="all-linear"))
    names = [n for n, _ in pm.named_parameters()]
    assert not any("base_layer.base_layer" in n or "lora_A.default.lora" in n for n in names)
    assert "base_model.model.lin0.lora_A.b.weight" in names and "base_model.model.lin1.lora_B.b.weight" in names


def test_bias_warns_on_disable_and_allows_one_adapter_with_bias():
    pm = get_peft_model(MLP(), LoraConfig(target_modules=["lin0"], bias="all"))
    with pytest.warns(UserWarning, match="bias configured to be 'all'"):
        with pm.disable_adapter():
            pass
    with pytest.raises(ValueError, match="supports only 1 adapter with bias"):
        pm.add_adapter("b", LoraConfig(target_modules=["lin0"], bias="lora_only"))
    assert list(pm.peft_config) == ["default"]
    pm.add_adapter("c", LoraConfig(target_modules=["lin0"]))  # bias="none" is fine


def test_dora_with_lora_bias_is_refused():
    with pytest.raises(ValueError, match="lora_bias=True is not supported for DoRA"):
        LoraConfig(target_modules=["lin0"], use_dora=True, lora_bias=True)


# -- LoRA on Conv1d / Conv2d --------------------------------------------------------------------------------
@pytest.mark.parametrize("name, model, cls", [("Conv1d", ModelConv1D, Conv1d), ("Conv2d", ModelConv2D, Conv2d)])
def test_conv_lora_is_a_no_op_at_init_and_has_peft_shapes(name, model, cls):
    base = model().eval()
    want = out(base, name)
    target = "conv1d" if name == "Conv1d" else "conv2d"
    pm = get_peft_model(base, LoraConfig(r=4, target_modules=[target]))
    layer = getattr(pm.base_model.model, target)
    assert isinstance(layer, cls)
    k = layer.base_layer.kernel_size
    assert layer.lora_A["default"].weight.shape == (4, layer.in_features, *k)
    assert layer.lora_B["default"].weight.shape == (layer.out_features, 4, *(1,) * len(k))
    np.testing.assert_array_equal(out(pm, name), want)


def test_conv_lora_forward_is_the_merged_conv_and_unmerges():
    """base + s B(A(x)) must equal one conv with W + delta (delta by the einsum in get_delta_weight)."""
    pm = get_peft_model(ModelConv2D().eval(), LoraConfig(r=3, lora_alpha=6, target_modules=["conv2d"],
                                                       init_lora_weights=False))
    W0 = pm.base_model.model.conv2d.base_layer.weight.data.copy()
    y = out(pm, "Conv2d")
    pm.merge_adapter()
    np.testing.assert_allclose(out(pm, "Conv2d"), y, rtol=1e-5, atol=1e-5)
    pm.unmerge_adapter()
    np.testing.assert_allclose(pm.base_model.model.conv2d.base_layer.weight.data, W0, atol=1e-6)
    merged = pm.merge_and_unload()
    assert type(merged.conv2d).__name__ == "Conv2d" and not hasattr(merged.conv2d, "lora_A")
    np.testing.assert_allclose(out(merged, "Conv2d"), y, rtol=1e-5, atol=1e-5)


def test_conv_lora_trains_only_the_adapter():
    pm = get_peft_model(ModelConv1D(), LoraConfig(r=2, target_modules=["conv1d"], init_lora_weights=False))
    pm(inputs("Conv1d")).sum().backward()
    grads = {n: p.grad for n, p in pm.named_parameters()}
    assert grads["base_model.model.conv1d.lora_A.default.weight"] is not None
    assert grads["base_model.model.conv1d.base_layer.weight"] is None


def test_conv_lora_groups_rules():
    with pytest.raises(ValueError, match="rank is divisible by groups"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            get_peft_model(ModelConv2DGroups(), LoraConfig(r=4, target_modules=["conv2d"]))
    with pytest.warns(UserWarning, match="groups > 1"):
        pm = get_peft_model(ModelConv2DGroups(), LoraConfig(r=8, target_modules=["conv2d"]))
    with pytest.raises(NotImplementedError, match="groups > 1"):
        pm.merge_adapter()


@pytest.mark.parametrize("name, model, target", [("Conv2d", ModelConv2D, "conv2d"), ("Conv1d", ModelConv1D, "conv1d")])
def test_conv_dora_is_a_no_op_at_init_and_merges_exactly(name, model, target):
    base = model().eval()
    want = out(base, name)
    pm = get_peft_model(base, LoraConfig(r=2, target_modules=[target], use_dora=True))
    m = getattr(pm.base_model.model, target).lora_magnitude_vector["default"].weight
    assert m.shape == (1, getattr(pm.base_model.model, target).out_features) + (1,) * (m.ndim - 2)
    np.testing.assert_allclose(out(pm, name), want, rtol=1e-5, atol=1e-6)
    pm = get_peft_model(model().eval(), LoraConfig(r=2, target_modules=[target], use_dora=True,
                                                 init_lora_weights=False))
    layer = getattr(pm.base_model.model, target)
    layer.lora_magnitude_vector["default"].weight.data *= 1.5  # m != n: the magnitude now matters
    W0 = layer.base_layer.weight.data.copy()
    y = out(pm, name)
    pm.merge_adapter()
    np.testing.assert_allclose(out(pm, name), y, rtol=1e-5, atol=1e-5)
    pm.unmerge_adapter()
    np.testing.assert_allclose(layer.base_layer.weight.data, W0, rtol=1e-5, atol=1e-6)
