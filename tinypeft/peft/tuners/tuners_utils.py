"""BaseTuner: find the target modules of a model, swap in adapter layers, and manage adapters across them.

A tuner (LoraModel, IA3Model) holds the wrapped transformers model as `.model` and the configs by adapter
name; PeftModel holds the tuner as `.base_model`. That nesting gives PEFT's state-dict keys:
`base_model.model.<path in the transformers model>.<adapter parameter>.<adapter name>`.
"""
import re
import warnings

import numpy as np

from ... import functional as F
from ... import nn
from ...autograd import no_grad
from ..utils.other import SEQ_CLS_HEAD_NAMES, ModulesToSaveWrapper
from ...models.gpt2 import Conv1D
from ...tensor import Tensor


def check_target_module_exists(config, key):
    """PEFT's matching rules for one dotted module path (see LoraConfig.target_modules)."""
    exclude = getattr(config, "exclude_modules", None)
    if exclude:
        if isinstance(exclude, str):
            if re.fullmatch(exclude, key):
                return False
        elif key in exclude or any(key.endswith("." + e) for e in exclude):
            return False
    for m in getattr(config, "modules_to_save", None) or []:
        if re.match(rf"(^|.*\.){m}($|\..*)", key):
            return False  # a module trained in full is never also adapted
    targets = config.target_modules
    if isinstance(targets, str):
        return re.fullmatch(targets, key) is not None
    if key in targets:
        return True
    if not any(key.endswith("." + t) for t in targets):
        return False
    layers = getattr(config, "layers_to_transform", None)
    if not layers:
        return True
    pattern = getattr(config, "layers_pattern", None)
    if not pattern:
        match = re.match(r".*?\.[^.]*\.(?P<idx>\d+)\.", key)  # the first number in the path: the layer index
    else:
        match = None
        for p in [pattern] if isinstance(pattern, str) else pattern:
            match = re.match(rf"(?:^|.*?\.){p}\.(?P<idx>\d+)\.", key)
            if match:
                break
    return match is not None and int(match.group("idx")) in layers


def get_pattern_key(pattern_keys, key):
    """The rank_pattern / alpha_pattern entry that applies to module path `key` (regex on a path suffix)."""
    for pattern in pattern_keys:
        if re.match(rf"(.*\.)?({pattern})$", key):
            return pattern
    return key


def all_linear_targets(config, model):
    """"all-linear": every Linear/Conv1D path except the output head (lm_head, or the classifier for SEQ_CLS).

    On a model that already carries adapters, a wrapped linear layer (lora.Linear, ia3.Linear) counts as the
    linear layer, and the layers inside any adapter layer (lora_A, base_layer, ...) are never targets.
    """
    names = {name for name, m in model.named_modules()
             if isinstance(m, (nn.Linear, Conv1D))
             or (isinstance(m, BaseTunerLayer) and "Linear" in type(m).__name__)}
    exclude = {f"{prefix}.{suffix}" for prefix, m in model.named_modules() if isinstance(m, BaseTunerLayer)
               for suffix, _ in m.named_modules() if suffix}
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if out is not None:
        exclude |= {name for name, m in model.named_modules() if m is out}
    elif str(config.task_type) == "SEQ_CLS":
        for head in SEQ_CLS_HEAD_NAMES:
            module = getattr(model, head, None)
            if module is not None:
                exclude |= {name for name, m in model.named_modules() if m is module}
                break
    return names - exclude


def linear_in_out(base_layer):
    """(in_features, out_features) of an nn.Linear or of GPT-2's Conv1D (weight stored [in, out]); None for
    any other layer (the caller raises its own error)."""
    if isinstance(base_layer, nn.Linear):
        return base_layer.in_features, base_layer.out_features
    if isinstance(base_layer, Conv1D):
        return tuple(base_layer.weight.shape)
    return None


def linear_fan_in_fan_out(config, target):
    """PEFT's rule for a Linear-like target: fan_in_fan_out is False for nn.Linear and True for GPT-2's Conv1D
    (which stores its weight [in, out]); a config that says otherwise is corrected, with PEFT's warning.
    Returns the value, or None when the target is neither (the caller raises its own error)."""
    if isinstance(target, nn.Linear):
        if config.fan_in_fan_out:
            warnings.warn("fan_in_fan_out is set to True but the target module is `torch.nn.Linear`. "
                          "Setting fan_in_fan_out to False.")
            config.fan_in_fan_out = False
        return False
    if isinstance(target, Conv1D):
        if not config.fan_in_fan_out:
            warnings.warn("fan_in_fan_out is set to False but the target module is `Conv1D`. "
                          "Setting fan_in_fan_out to True.")
            config.fan_in_fan_out = True
        return True
    return None


def new_linear_layer(layer_cls, target, config, supported="`torch.nn.Linear`, `transformers.pytorch_utils.Conv1D`"):
    """layer_cls(target, fan_in_fan_out=...) for a Linear or Conv1D target (PEFT's _create_new_module of the
    methods that wrap only those); any other target is refused with PEFT's message naming `supported`."""
    fan_in_fan_out = linear_fan_in_fan_out(config, target)
    if fan_in_fan_out is None:
        raise TypeError(f"Target module {target} is not supported. Currently, only the following modules are "
                        f"supported: {supported}.")
    return layer_cls(target, fan_in_fan_out=fan_in_fan_out)


class BaseTunerLayer:
    """What every adapter layer shares: the wrapped base layer, the active adapters, merge bookkeeping."""

    adapter_layer_names = ()
    other_param_names = ()

    def _init_tuner(self, base_layer):
        self.base_layer = base_layer
        self._active_adapter = ["default"]
        self.disable_adapters = False
        self.merged_adapters = []

    def _init_linear_tuner(self, base_layer, refusal):
        """_init_tuner for a layer that wraps only nn.Linear, with its in/out features; any other base layer
        raises `refusal` (the method's own error, as PEFT words it)."""
        if not isinstance(base_layer, nn.Linear):
            raise refusal
        self._init_tuner(base_layer)
        self.in_features, self.out_features = base_layer.in_features, base_layer.out_features

    def _dropout(self, x, p):
        """The adapter's input dropout (p = 0: x itself)."""
        return F.dropout(x, p, self.training) if p > 0 else x

    @property
    def active_adapters(self):
        return list(self._active_adapter)

    @property
    def merged(self):
        return bool(self.merged_adapters)

    def get_base_layer(self):
        return self.base_layer

    # the wrapped layer's parameters, read through the adapter layer as through the layer it replaced
    weight = property(lambda self: self.base_layer.weight)
    bias = property(lambda self: self.base_layer.bias)

    def set_adapter(self, adapter_names):
        """Activate these adapters; only the active ones train."""
        names = [adapter_names] if isinstance(adapter_names, str) else list(adapter_names)
        for layer_name in self.adapter_layer_names:
            container = getattr(self, layer_name)
            for key, module in container.items():
                _requires_grad(module, key in names)
        self._active_adapter = names

    def _adapters_to_run(self, available):
        """The active adapters in `available` (those this layer holds) that a forward should apply: none while
        adapters are disabled (unmerging first, as PEFT does) or merged into the base weight."""
        if self.disable_adapters and self.merged:
            self.unmerge()
        if self.disable_adapters or self.merged:
            return []
        return [a for a in self.active_adapters if a in available]

    def _merge_adapters(self, merged_weight, adapter_names, safe_merge, available, param="weight"):
        """Fold each adapter into the base weight: W <- merged_weight(adapter, W) (NumPy arrays), skipping those
        merged already or not in `available` (the adapters this layer holds). param="bias" folds into the bias."""
        for adapter in adapter_names or self.active_adapters:
            if adapter in self.merged_adapters or adapter not in available:
                continue
            W = getattr(self.base_layer, param)
            with no_grad():
                merged = merged_weight(adapter, W.data)
            if safe_merge and not np.isfinite(merged).all():
                raise ValueError(f"NaNs detected in the merged weights. The adapter {adapter} seems to be broken")
            W.data = merged.astype(W.dtype)
            self.merged_adapters.append(adapter)

    def _unmerge_adapters(self, unmerged_weight, param="weight"):
        """Undo merges last first: W <- unmerged_weight(adapter, W)."""
        while self.merged_adapters:
            W = getattr(self.base_layer, param)
            with no_grad():
                W.data = unmerged_weight(self.merged_adapters.pop(), W.data).astype(W.dtype)

    def merge(self, safe_merge=False, adapter_names=None):
        """Add each adapter's delta W (get_delta_weight) to the base weight: the rule of every method whose
        update is additive; the others (IA3, OFT, BOFT, RoAd, ...) define their own."""
        self._merge_adapters(lambda a, W: W + self.get_delta_weight(a), adapter_names, safe_merge,
                             getattr(self, self.adapter_layer_names[0]))

    def unmerge(self):
        self._unmerge_adapters(lambda a, W: W - self.get_delta_weight(a))

    def delete_adapter(self, adapter_name):
        for attr in self.adapter_layer_names + self.other_param_names:
            container = getattr(self, attr)
            if adapter_name in container:
                del container[adapter_name]
        if adapter_name in self._active_adapter:
            remaining = [a for a in self._active_adapter if a != adapter_name]
            if not remaining:
                keys = list(getattr(self, self.adapter_layer_names[0]).keys())
                remaining = keys[:1]
            self.set_adapter(remaining)


class AdapterLayer(nn.Module, BaseTunerLayer):
    """An adapter layer around nn.Linear, or also GPT-2's Conv1D for a method built with fan_in_fan_out (True for
    Conv1D's [in, out] weight; merging transposes delta W for it), whose adapters each add a term to the output:

        y = base(x) + sum over the active adapters of adapter_output(x, adapter)

    Subclasses create their per-adapter containers after super().__init__ and define adapter_output (DeLoRA,
    GraLoRA, RandLoRA, VeRA, and through DeltaWeightLayer FourierFT and WaveFT); one that changes the output
    otherwise (RoAd's rotation, C3A's chain of adapters) overrides forward. Any other base layer raises
    `unsupported` naming its type."""

    def __init__(self, base_layer, fan_in_fan_out=None, unsupported=TypeError):
        super().__init__()
        self._init_tuner(base_layer)
        if fan_in_fan_out is None:  # a method for nn.Linear only
            features = (base_layer.in_features, base_layer.out_features) if isinstance(base_layer, nn.Linear) else None
        else:
            features, self.fan_in_fan_out = linear_in_out(base_layer), fan_in_fan_out
        if features is None:
            raise unsupported(f"Unsupported layer type {type(base_layer)}")
        self.in_features, self.out_features = features

    def forward(self, x, *args, **kwargs):
        active = self._adapters_to_run(self._held())
        result = self.base_layer(x, *args, **kwargs)
        for adapter in active:
            result = result + self.adapter_output(x, adapter)
        return result

    def _held(self):
        """A container keyed by the adapters this layer holds: its first adapter container (FactorsLayer's is
        shared by all layers, so it names its own)."""
        return getattr(self, self.adapter_layer_names[0])

    def delta_of_map(self, fn, like):
        """delta W (an array) of an adapter that is the linear map fn ([.., in] -> [.., out] Tensors): fn sends row
        i of the identity to column i of delta W. [out, in], or [in, out] under fan_in_fan_out (Conv1D's layout).
        The identity takes the dtype and device of `like`, one of the adapter's parameters."""
        with no_grad():
            d = fn(Tensor(like.xp.eye(self.in_features, dtype=like.dtype))).data.T
        return d.T if self.fan_in_fan_out else d


class DeltaWeightLayer(AdapterLayer):
    """A layer whose adapters are dense delta W [out, in] Tensors made by the subclass's `delta(adapter)`
    (FourierFT, WaveFT): y = base(x) + x delta^T per active adapter; merging adds delta, transposed for
    Conv1D's [in, out] weight (fan_in_fan_out)."""

    def get_delta_weight(self, adapter):
        with no_grad():
            d = self.delta(adapter).data
        return d.T if self.fan_in_fan_out else d

    def adapter_output(self, x, adapter):
        return F.linear(x, self.delta(adapter))


class FactorsLayer(AdapterLayer):
    """A layer whose adapters are LoRA-shaped factors A [r, in] and B [out, r] that the subclass builds from
    trained tensors in `lora_matrices(adapter)` (UniLoRA, VB-LoRA, TinyLoRA): y = base(x) + (dropout(x) A^T) B^T
    per active adapter; merging adds B A, transposed for Conv1D's [in, out] weight (fan_in_fan_out).
    `dropout_name` names the subclass's dropout ModuleDict, `held_name` a container of this layer's own adapters
    (the trained tensors' containers are shared with the other layers)."""

    dropout_name = held_name = ""

    def _held(self):
        return getattr(self, self.held_name)

    def get_delta_weight(self, adapter):
        with no_grad():
            A, B = self.lora_matrices(adapter)
        delta = B.data @ A.data  # [out, in]
        return delta.T if self.fan_in_fan_out else delta

    def adapter_output(self, x, adapter):
        A, B = self.lora_matrices(adapter)
        return (getattr(self, self.dropout_name)[adapter](x) @ A.T) @ B.T  # [.., in] -> [.., r] -> [.., out]


def _requires_grad(obj, flag):
    if isinstance(obj, nn.Module):
        obj.requires_grad_(flag)
    else:
        obj.requires_grad = flag


def getattr_or_wrapped(module, name, wrapped):
    """module's own attribute, else that of the model it wraps (module.<wrapped>), as PEFT's wrappers do."""
    try:
        return nn.Module.__getattr__(module, name)
    except AttributeError:
        if name == wrapped:
            raise
        return getattr(getattr(module, wrapped), name)


def _follow_base_device(layer):
    """As PEFT's _move_adapter_to_device_of_base_layer: a new adapter lives where its base layer's weight does
    (a model moved with .to("cuda") gets its adapters there whatever the default device)."""
    if isinstance(layer, BaseTunerLayer):
        device = getattr(getattr(layer.get_base_layer(), "weight", None), "device", "cpu")
        if device != "cpu":
            layer.to(device)


class BaseTuner(nn.Module):
    prefix = ""  # parameter-name prefix of this method ("lora_", "ia3_"): everything else is frozen
    default_targets = {}
    layers_mapping = {}  # base layer class -> adapter layer class, for the default _create_new_module
    linear_layer_class = None  # or: the adapter layer for nn.Linear and GPT-2's Conv1D (fan_in_fan_out as PEFT sets it)
    unsupported_layer_error = TypeError  # PEFT's kind of error for a target layer the method cannot wrap

    def __init__(self, model, peft_config, adapter_name):
        super().__init__()
        self.model = model
        self.peft_config = peft_config if isinstance(peft_config, dict) else {adapter_name: peft_config}
        self.active_adapter = adapter_name
        self.inject_adapter(self.model, adapter_name)
        self.model.peft_config = self.peft_config

    @property
    def active_adapters(self):
        return [self.active_adapter] if isinstance(self.active_adapter, str) else list(self.active_adapter)

    # -- injection -----------------------------------------------------------------------------------------
    def _add_to_layer(self, target, target_name, parent, new_layer, update):
        """One target module: update(layer) adds the adapter to the adapter layer already there (an existing
        self.layer_class), or to new_layer(target), which then replaces the target in its parent. Either way
        only the tuner's active adapters stay active (a new adapter waits for set_adapter)."""
        layer = target if isinstance(target, self.layer_class) else new_layer(target)
        update(layer)
        layer.set_adapter(self.active_adapters)
        if layer is not target:
            setattr(parent, target_name, layer)

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        """The usual case (MiSS, OFT): the target becomes _create_new_module(config, target) and the adapter is
        added with update_layer(adapter_name, config.r, config) (r None for a config without one); a method that
        reads more per module
        (rank_pattern, ...) or updates differently overrides this."""
        self._add_to_layer(target, target_name, parent, lambda t: self._create_new_module(config, t),
                           lambda layer: layer.update_layer(adapter_name, getattr(config, "r", None), config))

    def _create_new_module(self, config, target):
        """The adapter layer for `target`: that of the first entry of layers_mapping it is an instance of, else
        PEFT's TypeError naming the supported layers (or its own kind: unsupported_layer_error)."""
        if self.linear_layer_class is not None:
            return new_linear_layer(self.linear_layer_class, target, config)
        for base_cls, layer_cls in self.layers_mapping.items():
            if isinstance(target, base_cls):
                return layer_cls(target)
        names = ", ".join(f"`torch.nn.{c.__name__}`" for c in self.layers_mapping)
        raise self.unsupported_layer_error(f"Target module {target} is not supported. Currently, only {names} "
                                           f"(optionally quantized) {'is' if len(self.layers_mapping) == 1 else 'are'}"
                                           " supported.")

    def _prepare_config(self, config, model):
        if config.target_modules is None and not getattr(config, "target_parameters", None):
            model_type = model.config.model_type
            if model_type not in self.default_targets:
                raise ValueError(
                    f"Please specify `target_modules` in `peft_config`: tinypeft has no default targets for "
                    f"model_type {model_type!r}."
                )
            config.target_modules = set(self.default_targets[model_type])
        elif isinstance(config.target_modules, str) and config.target_modules.lower() == "all-linear":
            config.target_modules = all_linear_targets(config, model)
        return config

    def _check_new_adapter_config(self, config):
        """PEFT's rule: a trained bias is shared by all adapters, so only one adapter may train it."""
        if sum(getattr(c, "bias", "none") != "none" for c in self.peft_config.values()) > 1:
            raise ValueError(
                f"{type(self).__name__} supports only 1 adapter with bias. When using multiple adapters, "
                "set bias to 'none' for all adapters."
            )

    def inject_adapter(self, model, adapter_name):
        self._check_new_adapter_config(self.peft_config[adapter_name])
        config = self._prepare_config(self.peft_config[adapter_name], model)
        matched = []
        for key, _ in list(model.named_modules()):
            if not key or config.target_modules is None or not check_target_module_exists(config, key):
                continue
            parent_name, _, target_name = key.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            target = getattr(parent, target_name)
            if isinstance(target, ModulesToSaveWrapper):
                continue
            self._create_and_replace(config, adapter_name, target, target_name, parent, key)
            _follow_base_device(getattr(parent, target_name))
            matched.append(key)
        matched += self._inject_parameters(config, model, adapter_name)
        if not matched:
            raise ValueError(
                f"Target modules {config.target_modules} not found in the base model. Please check the target "
                f"modules and try again (module names look like {[k for k, _ in model.named_modules()][1:6]})."
            )
        self._mark_only_adapters_as_trainable(model)
        if config.inference_mode:
            for n, p in model.named_parameters():
                if adapter_name in n:
                    p.requires_grad = False
        self.set_modules_to_save(config, adapter_name)

    def _inject_parameters(self, config, model, adapter_name):
        """Adapters on parameters named in config.target_parameters (LoRA's); the keys adapted."""
        return []

    def set_modules_to_save(self, config, adapter_name):
        for module_name in config.modules_to_save or []:
            for key, module in list(self.model.named_modules()):
                if not re.match(rf"(^|.*\.){module_name}$", key):
                    continue
                parent_name, _, name = key.rpartition(".")
                parent = self.model.get_submodule(parent_name) if parent_name else self.model
                if isinstance(module, ModulesToSaveWrapper):
                    module.update(adapter_name)
                    module.set_adapter(module.active_adapter or adapter_name)
                elif not isinstance(parent, ModulesToSaveWrapper) and ".modules_to_save." not in key:
                    setattr(parent, name, ModulesToSaveWrapper(module, adapter_name))

    def _mark_only_adapters_as_trainable(self, model):
        for n, p in model.named_parameters():
            if self.prefix not in n:
                p.requires_grad = False
        for adapter in self.active_adapters:
            bias = getattr(self.peft_config[adapter], "bias", "none")
            if bias == "all":
                for n, p in model.named_parameters():
                    if n.endswith("bias"):
                        p.requires_grad = True
            elif bias == "lora_only":
                for m in model.modules():
                    if isinstance(m, self.layer_class) and getattr(m.base_layer, "bias", None) is not None:
                        m.base_layer.bias.requires_grad = True

    def _shared_state(self, container_cls):
        """The tuner-wide container of the tensors all layers share (shared_state_names[0]: VB-LoRA's vector bank,
        UniLoRA's theta_d, ...), made on first use; layers hold the same object."""
        name = self.shared_state_names[0]
        if name not in self._modules:
            setattr(self, name, container_cls())
        return getattr(self, name)

    # -- saving and loading (AdaLoRA resizes by its rank_pattern; the others save and load as they are) -------
    def _adapter_state_for_save(self, config, adapter_name, state):
        return state

    def _prepare_load(self, config, adapter_name):
        pass

    def _load_own_state(self, file_state, adapter_name):
        """Take the file entries that are not model state (SHiRA's indices) before the rest is loaded; returns
        the rest."""
        return file_state

    # -- adapters ------------------------------------------------------------------------------------------
    def tuner_layers(self):
        return [m for m in self.model.modules() if isinstance(m, self.layer_class)]

    def set_adapter(self, adapter_name):
        for layer in self.tuner_layers():
            if layer.merged:
                layer.unmerge()
            layer.set_adapter(adapter_name)
        for m in self.model.modules():
            if isinstance(m, ModulesToSaveWrapper):
                m.set_adapter(adapter_name if isinstance(adapter_name, str) else adapter_name[0])
        self.active_adapter = adapter_name

    def _set_adapter_layers(self, enabled):
        for layer in self.tuner_layers():
            layer.disable_adapters = not enabled
        for m in self.model.modules():
            if isinstance(m, ModulesToSaveWrapper):
                m.disabled = not enabled

    def enable_adapter_layers(self):
        self._set_adapter_layers(True)

    def disable_adapter_layers(self):
        for adapter in self.active_adapters:
            bias = getattr(self.peft_config[adapter], "bias", "none")
            if bias != "none":
                warnings.warn(f"Careful, disabling adapter layers with bias configured to be '{bias}' does not "
                              "produce the same output as the base model would without adaption.")
        self._set_adapter_layers(False)

    def delete_adapter(self, adapter_name):
        if adapter_name not in self.peft_config:
            raise ValueError(f"Adapter {adapter_name} does not exist")
        del self.peft_config[adapter_name]
        for layer in self.tuner_layers():
            layer.delete_adapter(adapter_name)
        for m in self.model.modules():
            if isinstance(m, ModulesToSaveWrapper):
                m.delete_adapter(adapter_name)
        for name in getattr(self, "shared_state_names", ()):  # the adapter's shared tensors go too
            shared = self._modules.get(name)
            if shared is not None and adapter_name in shared:
                del shared[adapter_name]
        remaining = list(self.peft_config)
        self.active_adapter = remaining[0] if remaining else None

    def merge_adapter(self, adapter_names=None, safe_merge=False):
        for layer in self.tuner_layers():
            layer.merge(safe_merge=safe_merge, adapter_names=adapter_names)

    def unmerge_adapter(self):
        for layer in self.tuner_layers():
            layer.unmerge()

    def _unload_and_optionally_merge(self, merge=True, safe_merge=False, adapter_names=None):
        for key, _ in list(self.model.named_modules()):
            parent_name, _, name = key.rpartition(".")
            if not key:
                continue
            try:
                target = self.model.get_submodule(key)
            except AttributeError:
                continue  # inside a module already replaced
            parent = self.model.get_submodule(parent_name) if parent_name else self.model
            if hasattr(target, "unload_and_optionally_merge_module"):  # a layer with adapters inside its base
                setattr(parent, name, target.unload_and_optionally_merge_module(merge, safe_merge, adapter_names))
            elif isinstance(target, self.layer_class):
                if merge:
                    target.merge(safe_merge=safe_merge, adapter_names=adapter_names)
                setattr(parent, name, target.get_base_layer())
            elif isinstance(target, ModulesToSaveWrapper):
                keep = target.modules_to_save[target.active_adapter] if target.active_adapter else target.original_module
                setattr(parent, name, keep)
        return self.model

    def merge_and_unload(self, progressbar=False, safe_merge=False, adapter_names=None):
        """Merge the adapters into the base weights and return the plain base model."""
        return self._unload_and_optionally_merge(True, safe_merge, adapter_names)

    def unload(self):
        """Remove the adapter layers without merging: the original base model back."""
        return self._unload_and_optionally_merge(merge=False)

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    def __getattr__(self, name):
        return getattr_or_wrapped(self, name, "model")
