"""The adapter on disk: which state-dict entries an adapter owns, and their keys without the adapter name.

Model key:  base_model.model.model.decoder.layers.0.self_attn.q_proj.lora_A.default.weight
File key:   base_model.model.model.decoder.layers.0.self_attn.q_proj.lora_A.weight
ModulesToSaveWrapper copies are stored under the wrapped module's own path (`...classifier.weight`), and
DoRA's `lora_magnitude_vector.<name>.weight` as `lora_magnitude_vector`, as PEFT writes them.
"""
import re

import numpy as np

from ...tensor import as_numpy

SAFETENSORS_WEIGHTS_NAME = "adapter_model.safetensors"


def remove_adapter_name(key, adapter_name):
    if key.endswith("." + adapter_name):
        return key[: -len(adapter_name) - 1]
    # a ModuleList per adapter (PEANuT's peanut_encoders.<name>.0.weight): the name goes, the index stays
    key = re.sub(re.escape("." + adapter_name) + r"(?=\.\d+\.)", "", key)
    head, _, suffix = key.rpartition(".")
    head = re.sub(re.escape("." + adapter_name) + r"$", "", head)
    return f"{head}.{suffix}"


def _to_file_key(key, adapter_name):
    key = key.replace(f".modules_to_save.{adapter_name}.", ".")
    key = remove_adapter_name(key, adapter_name)
    if key.endswith("lora_magnitude_vector.weight"):
        key = key[: -len(".weight")]
    return key


def _owned(key, adapter_name, prefix, shared=()):
    """Does this model key hold a parameter of `adapter_name`? (`<prefix...>.<adapter>` in the path, or one of
    the tuner's shared tensors `base_model.<shared>.<adapter>[.<part>]`, such as VeRA's projections, which every
    layer also lists under its own path: those aliases are not saved, as in PEFT's files)"""
    if f".modules_to_save.{adapter_name}." in key:
        return True
    parts = key.split(".")
    if any(p in shared for p in parts):
        return len(parts) >= 3 and parts[0] == "base_model" and parts[1] in shared and parts[2] == adapter_name
    return any(a.startswith(prefix) and b == adapter_name for a, b in zip(parts, parts[1:]))


def get_peft_model_state_dict(model, adapter_name="default"):
    """{file key: float32 array} for one adapter of a tuner-based PeftModel (LoRA, IA3)."""
    config = model.peft_config[adapter_name]
    if config.is_prompt_learning:
        return model.prompt_learning_state_dict(adapter_name)
    prefix, shared = model.base_model.prefix, getattr(model.base_model, "shared_state_names", ())
    state = model.state_dict()
    out = {}
    for k, v in state.items():
        if _owned(k, adapter_name, prefix, shared):
            out[_to_file_key(k, adapter_name)] = v
    bias = getattr(config, "bias", "none")
    if bias == "all":
        out.update({k: v for k, v in state.items() if k.endswith(".bias") and ".original_module." not in k
                    and not _owned(k, adapter_name, prefix) and ".modules_to_save." not in k})
    elif bias == "lora_only":
        out.update({k: v for k, v in state.items() if k.endswith(".base_layer.bias")})
    out = model.base_model._adapter_state_for_save(config, adapter_name, out)
    return finite({k: _file_array(as_numpy(v)) for k, v in out.items()})


def _file_array(a):
    """As the file stores it: weights float32; integer buffers (Super-Tuning's positions) keep their type."""
    return np.ascontiguousarray(a if a.dtype.kind in "iu" else a.astype(np.float32))


def finite(state):
    """Refuse to save inf/NaN weights: a diverged adapter written as a success is data lost quietly."""
    bad = [k for k, v in state.items() if not np.isfinite(v).all()]
    if bad:
        raise ValueError(f"the adapter has non-finite (inf/NaN) values in {len(bad)} tensors, e.g. {bad[0]}; "
                         "training diverged: lower the learning rate and train again. Nothing was saved.")
    return state


def check_adapter_file(config, file):
    """Compare the config's sizes (r, num_virtual_tokens) with the shapes in the weights file's header
    before any adapter is built: an adapter_config.json saying r=2000000 must not allocate gigabytes
    first and fail later."""
    from ...checkpoint_io import read_header

    header, _ = read_header(file)
    header.pop("__metadata__", None)
    shapes = {k: v.get("shape") for k, v in header.items() if isinstance(v, dict)}
    if config.is_prompt_learning:
        rows = [s[0] for k, s in shapes.items() if k.endswith("prompt_embeddings") and s]
        n = config.num_virtual_tokens * (config.num_transformer_submodules or 1)
        if rows and rows[0] != n and rows[0] != config.num_virtual_tokens:
            raise ValueError(f"{file}: prompt_embeddings has {rows[0]} rows but the config says "
                             f"num_virtual_tokens={config.num_virtual_tokens}; the config and weights do not match.")
        return
    # lora_A.weight is [r, in] (a conv's [r, in, k, k]); lora_embedding_A is [r, vocab]
    ranks = {s[0] for k, s in shapes.items() if (".lora_A." in k or k.endswith(".lora_embedding_A")) and s}
    r = getattr(config, "r", None)
    if r is None or not ranks:
        return
    allowed = {r} | set((getattr(config, "rank_pattern", None) or {}).values())
    if not ranks <= allowed:
        raise ValueError(f"{file}: the weights have rank(s) {sorted(ranks)} but adapter_config.json says r={r}"
                         f"{' (rank_pattern ' + str(sorted(allowed - {r})) + ')' if len(allowed) > 1 else ''}; "
                         "the config and weights do not match.")


def set_peft_model_state_dict(model, file_state, adapter_name="default"):
    """Load file keys into the model's keys for `adapter_name`; returns the model keys left unloaded."""
    config = model.peft_config[adapter_name]
    if config.is_prompt_learning:
        return model.load_prompt_learning_state_dict(file_state, adapter_name)
    model.base_model._prepare_load(config, adapter_name)
    file_state = model.base_model._load_own_state(file_state, adapter_name)
    prefix, shared = model.base_model.prefix, getattr(model.base_model, "shared_state_names", ())
    params = dict(model.state_dict())
    file_to_model = {}
    for k in params:
        if _owned(k, adapter_name, prefix, shared):
            file_to_model[_to_file_key(k, adapter_name)] = k
    for fk in file_state:
        if fk not in file_to_model and fk in params:
            file_to_model[fk] = fk  # a plain model key (e.g. a trained bias) is loaded as it is
    return copy_file_state(model, params, file_state, file_to_model)


def copy_file_state(model, params, file_state, file_to_model):
    """Copy each file entry into the model parameter it maps to; returns (missing, unexpected) file keys."""
    unexpected = []
    for fk, value in file_state.items():
        mk = file_to_model.get(fk)
        if mk is None:
            unexpected.append(fk)
            continue
        target = params[mk]
        if tuple(target.shape) != tuple(value.shape):
            raise ValueError(
                f"Error(s) in loading state_dict for {type(model).__name__}: size mismatch for {mk}: copying a "
                f"param with shape {tuple(value.shape)} from checkpoint, the shape in current model is "
                f"{tuple(target.shape)}."
            )
        if np.asarray(value).dtype.kind != "f" and as_numpy(target).dtype.kind not in "iu":
            raise ValueError(f"{fk} is stored as {np.asarray(value).dtype}, but adapter weights are floats; the "
                             "file is mislabelled or not an adapter.")
        target.data[...] = value
    return sorted(set(file_to_model) - set(file_state)), unexpected
