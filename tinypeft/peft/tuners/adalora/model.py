"""AdaLoraModel: SVD-form LoRA layers on the targets, the orthogonal penalty added to the loss, and the rank
allocation that a training loop drives with update_and_allocate(global_step) after each optimizer step (tinypeft's
Trainer calls it; PEFT's docs ask hand-written loops to).

On disk (as PEFT): ranknum is not saved; once ranks were allocated, config.rank_pattern maps each layer's
"<path>.lora_E" to its kept-rank mask, the saved lora_A / lora_E / lora_B hold only the kept ranks, and loading
shrinks the layers to those ranks before the weights are copied in.
"""

import numpy as np

from .... import nn
from ....autograd import no_grad
from ..tuners_utils import BaseTuner, linear_fan_in_fan_out
from .layer import AdaLoraLayer, SVDConv2d, SVDLinear, orthogonal_regularization
from .rank_allocator import RankAllocator

# PEFT's TRANSFORMERS_MODELS_TO_ADALORA_TARGET_MODULES_MAPPING, for the model types tinypeft has
TARGETS = {"t5": ["q", "k", "v", "o", "wi", "wo"], "mt5": ["q", "k", "v", "o", "wi_0", "wi_1", "wo"],
           "gpt2": ["c_attn"], "opt": ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"],
           "llama": ["q_proj", "v_proj"], "mistral": ["q_proj", "v_proj"], "bert": ["query", "value"]}


class AdaLoraModel(BaseTuner):
    prefix = "lora_"
    layer_class = AdaLoraLayer
    default_targets = TARGETS

    def __init__(self, model, config, adapter_name):
        super().__init__(model, config, adapter_name)
        if not self.peft_config[adapter_name].inference_mode:
            self.trainable_adapter_name = adapter_name
            self.rankallocator = RankAllocator(self.model, self.peft_config[adapter_name], adapter_name)

    def _check_new_adapter_config(self, config):
        super()._check_new_adapter_config(config)
        if sum(not c.inference_mode for c in self.peft_config.values()) > 1:
            raise ValueError(f"{type(self).__name__} supports only 1 trainable adapter. When using multiple adapters, "
                             "set inference_mode to True for all adapters except the one you want to train.")

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        update = lambda layer: layer.update_layer(adapter_name, config.init_r, config.lora_alpha, config)  # noqa: E731
        self._add_to_layer(target, target_name, parent, lambda t: _new_layer(t, config), update)

    # -- training ------------------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        outputs = self.model(*args, **kwargs)
        loss = outputs.get("loss") if isinstance(outputs, dict) else None
        name = getattr(self, "trainable_adapter_name", None)
        if loss is not None and name is not None:
            weight = self.peft_config[name].orth_reg_weight
            params = [(n, p) for n, p in self.model.named_parameters()
                      if ("lora_A" in n or "lora_B" in n) and name in n]
            reg = orthogonal_regularization(params) if weight > 0 else None
            if reg is not None:
                outputs["loss"] = loss + weight * reg
        return outputs

    def update_and_allocate(self, global_step):
        """After loss.backward() (and optimizer.step()), before zero_grad(): update the importance scores and
        mask singular values to the budget of this step; from step total_step - tfinal on, keep the final mask."""
        name = getattr(self, "trainable_adapter_name", None)
        if name is None:
            raise ValueError("update_and_allocate: this AdaLoRA model has no trainable adapter (it was loaded with "
                             "inference_mode=True); load it with is_trainable=True to train it.")
        config = self.peft_config[name]
        final = config.total_step - config.tfinal
        if global_step < final:
            _, rank_pattern = self.rankallocator.update_and_allocate(self.model, global_step)
            if rank_pattern:
                config.rank_pattern = rank_pattern
        elif global_step == final:
            _, rank_pattern = self.rankallocator.update_and_allocate(self.model, global_step, force_mask=True)
            config.rank_pattern = rank_pattern
            self.rankallocator.reset_ipt()
        else:
            self.rankallocator.mask_using_rank_pattern(self.model, config.rank_pattern)

    def add_weighted_adapter(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} does not support add_weighted_adapter method.")

    # -- saving and loading --------------------------------------------------------------------------------
    def _adapter_state_for_save(self, config, adapter_name, state):
        """Keep only the allocated ranks (file keys), and write rank_pattern's keys without the adapter name."""
        if not config.rank_pattern:
            return state
        config.rank_pattern = {k.replace(f".{adapter_name}", ""): v for k, v in config.rank_pattern.items()}
        for name, keep in config.rank_pattern.items():
            keep = np.asarray(keep, dtype=bool)
            prefix = ".".join(name.split(".")[:-1])
            for part in ("lora_E", "lora_A", "lora_B"):
                key = f"base_model.model.{prefix}.{part}"
                if key not in state:
                    continue
                v = np.asarray(state[key])
                axis = 1 if part == "lora_B" else 0
                if int(keep.sum()) != v.shape[axis]:
                    state[key] = v[:, keep] if axis else v[keep]
        return state

    def _prepare_load(self, config, adapter_name):
        """Shrink each layer to the ranks its rank_pattern keeps, before the saved weights are copied in."""
        for name, keep in (config.rank_pattern or {}).items():
            keep = np.asarray(keep, dtype=bool)
            key = ".".join(name.split(".")[:-2] if adapter_name in name.split(".") else name.split(".")[:-1])
            target = self.model.get_submodule(key)
            E, A, B = (target.lora_E[adapter_name].data, target.lora_A[adapter_name].data,
                       target.lora_B[adapter_name].data)
            ranknum = target.ranknum[adapter_name].data.copy()
            target.update_layer(adapter_name, int(keep.sum()), config.lora_alpha, config)
            with no_grad():
                if keep.sum() > 0:
                    target.lora_E[adapter_name].data = E[keep].copy()
                    target.lora_A[adapter_name].data = A[keep].copy()
                    target.lora_B[adapter_name].data = B[:, keep].copy()
                    target.ranknum[adapter_name].data = ranknum
            if config.inference_mode:
                for p in (target.lora_E[adapter_name], target.lora_A[adapter_name], target.lora_B[adapter_name]):
                    p.requires_grad = False


def _new_layer(target, config):
    if isinstance(target, nn.Conv2d):
        return SVDConv2d(target)
    fan_in_fan_out = linear_fan_in_fan_out(config, target)
    if fan_in_fan_out is not None:
        return SVDLinear(target, fan_in_fan_out=fan_in_fan_out)
    raise ValueError(f"Target module {target} is not supported. Currently, only `torch.nn.Linear`, `Conv1D`, and "
                     "`torch.nn.Conv2d` are supported.")

