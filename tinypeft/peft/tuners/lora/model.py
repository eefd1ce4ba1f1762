"""LoraModel: puts LoRA layers on the target modules; merges, unloads and combines adapters."""
import dataclasses
import warnings

import numpy as np

from .... import nn
from ....models.gpt2 import Conv1D
from ..tuners_utils import BaseTuner, get_pattern_key
from ...utils import merge_utils
from ...utils.other import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING, ModulesToSaveWrapper
from .bnb import dispatch_bnb
from .gguf import dispatch_gguf
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
                             svd_clamp=None, svd_full_matrices=True, svd_driver=None, density=None,
                             majority_sign_method="total"):
        """A new adapter from a weighted combination of existing ones (w_i the weight, s_i the scaling of adapter i).

        "cat": ranks are concatenated, so B A = sum_i w_i s_i B_i A_i exactly.
        "linear", "ties", "dare_linear", "dare_ties", "magnitude_prune" (all ranks equal): the A factors are merged
        with weights sign(w_i s_i) sqrt(|w_i s_i|) and the B factors with sqrt(|w_i s_i|), each by that merge of
        merge_utils (an approximation: the product of sums is not the sum of products).
        "svd", "ties_svd", "dare_linear_svd", "dare_ties_svd", "magnitude_prune_svd": the merge is applied to the
        full updates s_i B_i A_i, and the result is factored again by a truncated SVD to rank svd_rank (default:
        the largest rank), optionally clamped to the svd_clamp quantile of the factors' entries.
        The new adapter gets r = lora_alpha = its rank (scaling 1, or sqrt(rank) when the first adapter uses
        rsLoRA); every other field is copied from the first adapter's config, as PEFT does.
        """
        if adapter_name in self.peft_config:
            raise ValueError(f"Adapter {adapter_name!r} already exists.")
        if svd_driver is not None:  # torch.linalg.svd's cuSOLVER choices; NumPy has one LAPACK driver (gesdd)
            raise NotImplementedError(f"svd_driver={svd_driver!r}: the drivers 'gesvd', 'gesvdj' and 'gesvda' are "
                                      "cuSOLVER's (CUDA only); tinypeft's SVD is NumPy's, so pass svd_driver=None.")
        combination_type, new_rank, targets = self._check_add_weighted_adapter(adapters, combination_type, svd_rank)
        if density is None and combination_type not in ("linear", "cat", "svd"):
            raise ValueError(f"combination_type {combination_type!r} prunes: give density (the fraction to keep).")
        if majority_sign_method not in ("total", "frequency"):  # checked before the new adapter exists
            raise RuntimeError(f'Unimplemented mask method "{majority_sign_method}"')
        # as PEFT: a copy of the first adapter's config (layers_to_transform, exclude_modules, use_rslora, ... kept)
        config = dataclasses.replace(self.peft_config[adapters[0]], r=new_rank, lora_alpha=new_rank,
                                     rank_pattern={}, alpha_pattern={})
        config.target_modules = targets
        self.peft_config[adapter_name] = config
        self.inject_adapter(self.model, adapter_name)
        svd = dict(clamp=svd_clamp, full_matrices=svd_full_matrices)
        for layer in self.tuner_layers():
            new_A, new_B = _factors(layer, adapter_name)
            if new_A is None:
                continue
            present = [(a, w) for a, w in zip(adapters, weights) if _factors(layer, a)[0] is not None]
            if not present:
                raise ValueError(f"No matching LoRAs found for {adapter_name!r} in a {type(layer).__name__} layer.")
            if combination_type == "cat":
                A, B = _concatenated(layer, present, new_A.shape, new_B.shape)
            elif combination_type.endswith("svd"):
                A, B = _svd_of_merged_delta(layer, present, combination_type, new_rank, density,
                                            majority_sign_method, new_A.shape, new_B.shape, **svd)
            else:
                A, B = _merged_factors(layer, present, combination_type, density, majority_sign_method)
            new_A.data, new_B.data = A.astype(np.float32), B.astype(np.float32)
        self._mark_only_adapters_as_trainable(self.model)

    def _check_add_weighted_adapter(self, adapters, combination_type, svd_rank):
        """(combination type, the new adapter's rank, its target_modules), or PEFT's error for a bad request."""
        for a in adapters:
            if a not in self.peft_config:
                raise ValueError(f"Adapter {a} does not exist")
        clashes = [m for m in self.model.modules() if isinstance(m, ModulesToSaveWrapper)
                   and sum(a in m.modules_to_save for a in adapters) > 1]
        if clashes:  # two trained copies of one module cannot be combined
            raise ValueError("Cannot add weighted adapters if they target the same module with modules_to_save, "
                             f"but found {len(clashes)} such instance(s).")
        combination_type = "linear" if len(adapters) == 1 else combination_type
        # the largest rank any layer of each adapter has (rank_pattern may exceed r), so "cat" has room for all
        ranks = [max([c.r, *(c.rank_pattern or {}).values()]) for c in (self.peft_config[a] for a in adapters)]
        if combination_type in _FACTOR_MERGES:
            if len(set(ranks)) != 1:
                raise ValueError("All adapters must have the same r value when using combination_type linear, ties, "
                                 "dare_ties or dare_linear.")
            new_rank = ranks[0]
        elif combination_type == "cat":
            new_rank = sum(ranks)
        elif combination_type in _DELTA_MERGES:
            new_rank = svd_rank or max(ranks)
        else:
            raise ValueError(f"Invalid combination_type: {combination_type}")
        kinds = {isinstance(self.peft_config[a].target_modules, str) for a in adapters}
        if len(kinds) > 1:
            raise ValueError("all adapter configs should follow the same target modules type.")
        if kinds == {True}:
            targets = "|".join(f"({self.peft_config[a].target_modules})" for a in adapters)
        else:
            targets = set().union(*(set(self.peft_config[a].target_modules) for a in adapters))
        return combination_type, new_rank, targets


# combination_type -> the merge of peft.utils.merge_utils, applied to the factors or to the whole updates
_FACTOR_MERGES = {"linear": "task_arithmetic", "ties": "ties", "dare_linear": "dare_linear",
                  "dare_ties": "dare_ties", "magnitude_prune": "magnitude_prune"}
_DELTA_MERGES = {"svd": "task_arithmetic", "ties_svd": "ties", "dare_linear_svd": "dare_linear",
                 "dare_ties_svd": "dare_ties", "magnitude_prune_svd": "magnitude_prune"}


def _merge(name, tensors, weights, density, majority_sign_method):
    """One merge_utils function by name, given only the arguments it takes."""
    kwargs = {} if name == "task_arithmetic" else {"density": density}
    if name in ("ties", "dare_ties"):
        kwargs["majority_sign_method"] = majority_sign_method
    return getattr(merge_utils, name)(tensors, np.asarray(weights, np.float32), **kwargs)


def _factors(layer, adapter):
    """(A, B) of one adapter on one layer as Parameters: lora_A/B weights, or an Embedding's lora_embedding_A/B."""
    if adapter in layer.lora_A:
        return layer.lora_A[adapter].weight, layer.lora_B[adapter].weight
    if adapter in layer.lora_embedding_A:
        return layer.lora_embedding_A[adapter], layer.lora_embedding_B[adapter]
    return None, None


def _concatenated(layer, present, shape_A, shape_B):
    """"cat": A = [w_1 s_1 A_1; w_2 s_2 A_2; ...], B = [B_1, B_2, ...], zero-padded to the new rank."""
    As = [_factors(layer, a)[0].data * (w * layer.scaling[a]) for a, w in present]
    Bs = [_factors(layer, a)[1].data for a, _ in present]
    A, B = np.zeros(shape_A, np.float32), np.zeros(shape_B, np.float32)
    A[: sum(x.shape[0] for x in As)] = np.concatenate(As, axis=0)
    B[:, : sum(x.shape[1] for x in Bs)] = np.concatenate(Bs, axis=1)
    return A, B


def _merged_factors(layer, present, combination_type, density, majority_sign_method):
    """Merge the A factors and the B factors separately; sqrt(|w s|) on each, the sign on A only (so that a
    negative weight subtracts instead of cancelling out)."""
    ws = [w * layer.scaling[a] for a, w in present]
    weights_A = [np.sqrt(abs(x)) * (1 if x >= 0 else -1) for x in ws]
    weights_B = [np.sqrt(abs(x)) for x in ws]
    name = _FACTOR_MERGES[combination_type]
    A = _merge(name, [_factors(layer, a)[0].data for a, _ in present], weights_A, density, majority_sign_method)
    B = _merge(name, [_factors(layer, a)[1].data for a, _ in present], weights_B, density, majority_sign_method)
    return A, B


def _svd_of_merged_delta(layer, present, combination_type, new_rank, density, majority_sign_method, shape_A,
                         shape_B, clamp=None, full_matrices=True):
    """Merge the updates s_i B_i A_i, then factor the result: delta [out, in] = U S Vh, B = U_r S_r, A = Vh_r.
    A conv's update is flattened to [out, in * kernel] and the factors reshaped to the conv factors' shapes."""
    deltas = [layer.get_delta_weight(a) for a, _ in present]  # in the base weight's layout
    delta = _merge(_DELTA_MERGES[combination_type], deltas, [w for _, w in present], density, majority_sign_method)
    if getattr(layer, "fan_in_fan_out", False):  # [in, out] (GPT-2's Conv1D, an Embedding's table) -> [out, in]
        delta = delta.T
    delta = delta.reshape(delta.shape[0], -1)
    U, S, Vh = np.linalg.svd(delta, full_matrices=full_matrices)  # U [out, k], S [k], Vh [k', in]
    U = U[:, :new_rank] * S[:new_rank]  # U diag(S): [out, r] (fewer columns when r > min(out, in))
    Vh = Vh[:new_rank, :]  # [r, in]
    if clamp is not None:  # clip both factors to the clamp-quantile of all their entries (kohya's svd_merge_lora)
        hi = np.quantile(np.concatenate([U.ravel(), Vh.ravel()]), clamp)
        U, Vh = np.clip(U, -hi, hi), np.clip(Vh, -hi, hi)
    # r > min(out, in): there are only min(out, in) singular values. PEFT then stores factors of other shapes
    # than the adapter's (and with full_matrices=True a B that does not fit A); zero columns of B (and zero rows
    # of A) keep the declared shapes and the same update B A.
    B, A = np.zeros((U.shape[0], new_rank), U.dtype), np.zeros((new_rank, Vh.shape[1]), Vh.dtype)
    B[:, : U.shape[1]], A[: Vh.shape[0]] = U, Vh
    return A.reshape(shape_A), B.reshape(shape_B)
