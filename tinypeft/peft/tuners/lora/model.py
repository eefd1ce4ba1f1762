"""LoraModel: puts LoRA layers on the target modules; merges, unloads and combines adapters."""
import dataclasses
import warnings

import numpy as np

from .... import nn
from ....models.gpt2 import Conv1D
from ..tuners_utils import BaseTuner, get_pattern_key
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING, ModulesToSaveWrapper
from .bnb import dispatch_bnb
from .gguf import dispatch_gguf
from .config import LoraConfig
from .conv import Conv1d, Conv2d, Conv3d
from .layer import Embedding, Linear, LoraLayer
from .multihead_attention import MultiheadAttention
from .param_wrapper import ParamWrapper


class LoraModel(BaseTuner):
    prefix = "lora_"
    layer_class = LoraLayer
    default_targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

    @staticmethod
    def _layer_kwargs(config, current_key):
        """update_layer's arguments for the module (or parameter) at current_key: rank_pattern / alpha_pattern."""
        pattern = get_pattern_key(list(config.rank_pattern or {}), current_key)
        r = (config.rank_pattern or {}).get(pattern, config.r)
        pattern = get_pattern_key(list(config.alpha_pattern or {}), current_key)
        alpha = (config.alpha_pattern or {}).get(pattern, config.lora_alpha)
        return dict(r=r, lora_alpha=alpha, lora_dropout=config.lora_dropout, init_lora_weights=config.init_lora_weights,
                    use_rslora=config.use_rslora, use_dora=config.use_dora, lora_bias=config.lora_bias)

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        kwargs = self._layer_kwargs(config, current_key)
        if isinstance(target, LoraLayer):  # a second adapter on an already wrapped layer
            target.update_layer(adapter_name, **kwargs)
            if adapter_name not in self.active_adapters:
                target.set_adapter(target.active_adapters)  # keep the new adapter inactive
            return
        quantized = dispatch_bnb(target)  # LoRA on a Linear4bit / Linear8bitLt, or None
        if quantized is None:
            quantized = dispatch_gguf(target)  # on a GGUFLinear (GGUF's own blocks), or None
        if quantized is not None:
            new = quantized
        elif isinstance(target, nn.Embedding):
            new = Embedding(target)
        elif isinstance(target, nn.MultiheadAttention):
            new = MultiheadAttention(target)
        elif isinstance(target, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            new = (Conv1d, Conv2d, Conv3d)[len(target.kernel_size) - 1](target)
        elif isinstance(target, Conv1D):
            if not config.fan_in_fan_out:
                warnings.warn("fan_in_fan_out is set to False but the target module is `Conv1D`. "
                              "Setting fan_in_fan_out to True.")
                config.fan_in_fan_out = True
            new = Linear(target, fan_in_fan_out=True)
        elif isinstance(target, nn.Linear):
            if config.fan_in_fan_out:
                warnings.warn("fan_in_fan_out is set to True but the target module is `torch.nn.Linear`. "
                              "Setting fan_in_fan_out to False.")
                config.fan_in_fan_out = False
            new = Linear(target)
        else:
            raise ValueError(
                f"Target module {current_key} ({type(target).__name__}) is not supported. tinypeft's LoRA works on "
                "Linear, GPT-2's Conv1D, Embedding, Conv1d, Conv2d, Conv3d and MultiheadAttention layers."
            )
        new.update_layer(adapter_name, **kwargs)
        new.set_adapter(self.active_adapters)
        setattr(parent, target_name, new)

    def _inject_parameters(self, config, model, adapter_name):
        """target_parameters, matched as PEFT does: `<module path>.<parameter>` (".base_layer" left out of the path)
        equal to a target or ending with "." + target; the owning module is wrapped in a ParamWrapper."""
        targets = sorted(set(config.target_parameters or ()))
        matched = []
        for module_name, module in list(model.named_modules()) if targets else []:
            owner_name = module_name.replace(".base_layer", "")
            for name in list(module._parameters):
                key = f"{owner_name}.{name}"
                if key not in targets and not any(key.endswith("." + t) for t in targets):
                    continue
                if not module_name:
                    raise ValueError(f"Targeting an nn.Parameter on the top-level module is not supported "
                                     f"(parameter '{name}').")
                owner = model.get_submodule(owner_name)
                if isinstance(owner, LoraLayer) and not isinstance(owner, ParamWrapper):
                    raise ValueError(f"Trying to wrap an `nn.Parameter` of layer '{owner_name}' of type "
                                     f"{type(owner).__name__}, which is not a valid target. Make sure that this layer "
                                     "is not also targeted with `target_modules`.")
                if not isinstance(owner, ParamWrapper) or owner.parameter_name != name:
                    parent_name, _, child = owner_name.rpartition(".")  # (a further adapter reuses the wrapper)
                    owner = ParamWrapper(owner, name)  # refuses a second parameter of one module
                    setattr(model.get_submodule(parent_name), child, owner)
                owner.update_layer(adapter_name, **self._layer_kwargs(config, key))
                owner.set_adapter(self.active_adapters)
                matched.append(key)
        return matched

    def add_weighted_adapter(self, adapters, weights, adapter_name, combination_type="svd", svd_rank=None,
                             density=None, majority_sign_method="total"):
        """A new adapter from a weighted combination of existing ones.

        "linear": A = sum_i sqrt(w_i s_i) A_i, B = sum_i sqrt(w_i s_i) B_i (all ranks equal);
        "cat": ranks are concatenated, so B A = sum_i w_i s_i B_i A_i exactly. The new adapter gets
        r = lora_alpha = its rank (scaling 1, or sqrt(rank) when the first adapter uses rsLoRA); every other
        field is copied from the first adapter's config, as PEFT does.
        """
        if adapter_name in self.peft_config:
            raise ValueError(f"Adapter {adapter_name!r} already exists.")
        for a in adapters:
            if a not in self.peft_config:
                raise ValueError(f"Adapter {a} does not exist")
        clashes = [m for m in self.model.modules() if isinstance(m, ModulesToSaveWrapper)
                   and sum(a in m.modules_to_save for a in adapters) > 1]
        if clashes:  # two trained copies of one module cannot be combined
            raise ValueError("Cannot add weighted adapters if they target the same module with modules_to_save, "
                             f"but found {len(clashes)} such instance(s).")
        combination_type = "linear" if len(adapters) == 1 else combination_type
        if combination_type not in ("linear", "cat"):
            raise NotImplementedError(f"combination_type {combination_type!r}: tinypeft supports 'linear' and 'cat'.")
        # the largest rank any layer of each adapter has (rank_pattern may exceed r), so "cat" has room for all
        ranks = [max([c.r, *(c.rank_pattern or {}).values()]) for c in (self.peft_config[a] for a in adapters)]
        if combination_type == "linear" and len(set(ranks)) != 1:
            raise ValueError("All adapters must have the same r value when using combination_type 'linear'.")
        new_rank = sum(ranks) if combination_type == "cat" else ranks[0]
        kinds = {isinstance(self.peft_config[a].target_modules, str) for a in adapters}
        if len(kinds) > 1:
            raise ValueError("all adapter configs should follow the same target modules type.")
        if kinds == {True}:
            targets = "|".join(f"({self.peft_config[a].target_modules})" for a in adapters)
        else:
            targets = set().union(*(set(self.peft_config[a].target_modules) for a in adapters))
        # as PEFT: a copy of the first adapter's config (layers_to_transform, exclude_modules, use_rslora, ... kept)
        config = dataclasses.replace(self.peft_config[adapters[0]], r=new_rank, lora_alpha=new_rank,
                                     rank_pattern={}, alpha_pattern={})
        config.target_modules = targets
        self.peft_config[adapter_name] = config
        self.inject_adapter(self.model, adapter_name)
        for layer in self.tuner_layers():
            new_A, new_B = _factors(layer, adapter_name)
            if new_A is None:
                continue
            As, Bs = [], []
            for a, w in zip(adapters, weights):
                A, B = _factors(layer, a)
                if A is None:
                    continue
                ws = w * layer.scaling[a]
                if combination_type == "linear":  # sqrt(|w s|) on each factor, the sign on A (as PEFT)
                    As.append(A.data * (np.sqrt(abs(ws)) * (1 if ws >= 0 else -1)))
                    Bs.append(B.data * np.sqrt(abs(ws)))
                else:  # "cat": stack the ranks; w s goes on A
                    As.append(A.data * ws)
                    Bs.append(B.data)
            if combination_type == "linear":
                new_A.data = sum(As).astype(np.float32)
                new_B.data = sum(Bs).astype(np.float32)
            else:
                pad_A = np.zeros(new_A.shape, np.float32)
                pad_B = np.zeros(new_B.shape, np.float32)
                pad_A[: sum(x.shape[0] for x in As)] = np.concatenate(As, axis=0)
                pad_B[:, : sum(x.shape[1] for x in Bs)] = np.concatenate(Bs, axis=1)
                new_A.data, new_B.data = pad_A, pad_B
        self._mark_only_adapters_as_trainable(self.model)


def _factors(layer, adapter):
    """(A, B) of one adapter on one layer as Parameters: lora_A/B weights, or an Embedding's lora_embedding_A/B."""
    if adapter in layer.lora_A:
        return layer.lora_A[adapter].weight, layer.lora_B[adapter].weight
    if adapter in layer.lora_embedding_A:
        return layer.lora_embedding_A[adapter], layer.lora_embedding_B[adapter]
    return None, None
