"""AdaLoRA: the budget schedule, the orthogonal penalty, gradients, the Trainer driving update_and_allocate, and
a save / load round trip that shrinks the layers to their kept ranks."""
import numpy as np
import pytest

import tinypeft as tp
from tinypeft import functional as F
from tinypeft import nn
from tinypeft.data import Dataset
from tinypeft.models import ModelOutput
from tinypeft.peft import AdaLoraConfig, PeftModel, get_peft_model
from tinypeft.peft.tuners.adalora.layer import orthogonal_regularization
from tinypeft.testing import gradcheck
from tinypeft.trainer import Trainer, TrainingArguments


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin0, self.lin1 = nn.Linear(4, 12), nn.Linear(12, 3)

    def forward(self, x, labels=None):
        x = tp.tensor(np.asarray(x.numpy() if isinstance(x, tp.Tensor) else x, dtype=np.float32))
        logits = self.lin1(F.relu(self.lin0(x)))
        return ModelOutput(loss=None if labels is None else F.cross_entropy(logits, labels), logits=logits)


def adalora(**kw):
    cfg = dict(target_modules=["lin0", "lin1"], init_r=6, target_r=2, tinit=2, tfinal=3, deltaT=2, total_step=12)
    return get_peft_model(Net(), AdaLoraConfig(**{**cfg, **kw}))


def test_budget_schedule_by_hand():
    alloc = adalora().base_model.rankallocator
    assert (alloc.init_bgt, alloc.target_bgt) == (12, 4)
    assert alloc.budget_schedule(2) == (12, False)  # t <= tinit
    # t = 5: 4 + 8 * (1 - 3/7)^3 = 5.49 -> 5, masked only on multiples of deltaT
    assert alloc.budget_schedule(5) == (5, False) and alloc.budget_schedule(6)[1] is True
    assert alloc.budget_schedule(10) == (4, True)  # the final phase


def test_orthogonal_penalty_is_zero_for_orthonormal_factors_and_positive_otherwise():
    q = np.linalg.qr(np.random.default_rng(0).standard_normal((12, 6)))[0]  # orthonormal columns
    assert float(orthogonal_regularization([("lora_A", tp.tensor(q.T)), ("lora_B", tp.tensor(q))]).item()) < 1e-12
    # ||0 - I_6||_F = sqrt(6) for a zero A
    assert np.isclose(float(orthogonal_regularization([("lora_A", tp.tensor(np.zeros((6, 4))))]).item()), np.sqrt(6))


def test_loss_carries_the_penalty_and_gradients_match_finite_differences():
    pm = adalora(orth_reg_weight=0.5, init_lora_weights=False)
    x, y = tp.tensor(np.random.default_rng(1).standard_normal((5, 4))), tp.tensor(np.array([0, 1, 2, 1, 0]))
    with_reg = float(pm(x, labels=y).loss.item())
    pm.peft_config["default"].orth_reg_weight = 0.0
    assert with_reg > float(pm(x, labels=y).loss.item())
    layer = pm.base_model.model.lin0
    for name in ("lora_A", "lora_E", "lora_B"):
        d = getattr(layer, name)
        d["default"] = tp.nn.Parameter(d["default"].data.astype(np.float64))
    layer.ranknum["default"] = tp.nn.Parameter(np.array([6.0]), requires_grad=False)
    xin = tp.tensor(np.random.default_rng(2).standard_normal((3, 4)))
    layer.base_layer.weight = tp.nn.Parameter(layer.base_layer.weight.data.astype(np.float64), requires_grad=False)
    layer.base_layer.bias = tp.nn.Parameter(layer.base_layer.bias.data.astype(np.float64), requires_grad=False)
    assert gradcheck(lambda a, e, b: layer(xin), [layer.lora_A["default"], layer.lora_E["default"],
                                                   layer.lora_B["default"]])


def test_trainer_drives_the_allocation_and_the_adapter_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    rows = [{"x": rng.standard_normal(4).tolist(), "labels": int(rng.integers(3))} for _ in range(24)]
    pm = adalora(lora_alpha=4)
    args = TrainingArguments(str(tmp_path / "run"), max_steps=12, learning_rate=0.05, per_device_train_batch_size=2,
                             save_strategy="no", disable_tqdm=True, report_to="none")
    Trainer(pm, args, train_dataset=Dataset.from_list(rows)).train()
    pattern = pm.peft_config["default"].rank_pattern
    assert sorted(pattern) == ["lin0.lora_E.default", "lin1.lora_E.default"]
    assert sum(sum(v) for v in pattern.values()) == 4  # the final budget, target_r per layer on average
    for name, keep in pattern.items():
        E = pm.base_model.model.get_submodule(name.rsplit(".", 2)[0]).lora_E["default"].data.reshape(-1)
        assert (E[~np.asarray(keep)] == 0).all()  # the pruned singular values are zero
    pm.eval()
    x = tp.tensor(rng.standard_normal((5, 4)))
    want = pm(x).logits.detach().numpy()
    pm.save_pretrained(tmp_path / "adapter")
    base = Net()
    base.load_state_dict({k.replace("base_layer.", ""): v for k, v in pm.get_base_model().state_dict().items()
                          if "lora_" not in k and "ranknum" not in k})
    loaded = PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    np.testing.assert_allclose(loaded(x).logits.detach().numpy(), want, rtol=1e-5, atol=1e-6)
    assert sum(m.lora_E["default"].shape[0] for m in (loaded.base_model.model.lin0, loaded.base_model.model.lin1)) == 4


def test_one_trainable_adapter_and_bad_configs():
    pm = adalora()
    with pytest.raises(ValueError, match="only 1 trainable adapter"):
        pm.add_adapter("other", AdaLoraConfig(target_modules=["lin0"], total_step=5))
    with pytest.raises(ValueError, match="total_step"):
        AdaLoraConfig(target_modules=["lin0"])
    with pytest.raises(ValueError, match="budgeting phase"):
        AdaLoraConfig(target_modules=["lin0"], total_step=4, tinit=2, tfinal=2)
    with pytest.raises(ValueError, match="DoRA"):
        AdaLoraConfig(total_step=4, use_dora=True)
    with pytest.raises(TypeError, match="add_weighted_adapter"):
        pm.base_model.add_weighted_adapter(["default"], [1.0], "x")
