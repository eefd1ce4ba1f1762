"""Prompt learning inside PeftModel: the prompt encoder, the virtual tokens it makes, and their file format.

Three methods, one idea: learn N "virtual tokens" while the model stays frozen.
- prompt tuning / P-tuning: N input embeddings, put in front of the real tokens' embeddings
  (inputs_embeds = [prompts (B, N, d); embed(input_ids) (B, T, d)]);
- prefix tuning: N keys and values per layer, handed to the model as if they were a key/value cache, so every
  real token attends to them (past_key_values, L pairs of [B, H_kv, N, hd]).
Either way the attention mask gets N leading ones. The adapter file holds one table, `prompt_embeddings`:
the encoder's output for the N tokens, so a loaded adapter needs no encoder at all (PEFT's inference mode).
"""
import contextlib
import inspect
import re

import numpy as np

from .. import nn
from ..models.generation import GenerationMixin
from ..ops.shape import cat
from ..tensor import as_array, as_numpy
from .config import PeftType
from .utils.other import ModulesToSaveWrapper
from .utils.save_and_load import _to_file_key, copy_file_state


def prepare_prompt_learning_config(config, model_config):
    """Fill token_dim, num_layers, num_attention_heads (and encoder_hidden_size) from the model, as PEFT does.

    Grouped-query models keep only num_key_value_heads heads of keys and values, so a prefix (which *is*
    keys and values) is H_kv * head_dim wide: token_dim and num_attention_heads are rewritten to those.
    """
    get = lambda *names: next((getattr(model_config, n) for n in names if getattr(model_config, n, None) is not None), None)
    for field, names in (("num_layers", ("num_hidden_layers", "num_layers", "n_layer")),
                         ("token_dim", ("hidden_size", "n_embd", "d_model")),
                         ("num_attention_heads", ("num_attention_heads", "n_head", "num_heads", "encoder_attention_heads"))):
        if getattr(config, field) is None:
            value = get(*names)
            if value is None:
                raise ValueError(f"Please specify `{field}` in `peft_config`")
            setattr(config, field, value)
    kv_heads = getattr(model_config, "num_key_value_heads", None)
    if str(config.peft_type) == "PREFIX_TUNING" and kv_heads is not None:
        head_dim = getattr(model_config, "head_dim", None) or config.token_dim // config.num_attention_heads
        config.token_dim = head_dim * kv_heads
        config.num_attention_heads = kv_heads
    if hasattr(config, "encoder_hidden_size") and config.encoder_hidden_size is None:
        config.encoder_hidden_size = config.token_dim
    if config.num_transformer_submodules is None:
        config.num_transformer_submodules = 2 if str(config.task_type) == "SEQ_2_SEQ_LM" else 1
    return config


def with_prompt_learning(task_cls):
    """task_cls (PeftModel or a task class) with PromptLearningMixin in front, so the mixin's methods replace
    PeftModel's tuner ones while the task's _forward_prompt_learning stays. Made once per class; same name."""
    if issubclass(task_cls, PromptLearningMixin):
        return task_cls
    if task_cls not in _PROMPT_LEARNING_CLASSES:
        names = {"__module__": task_cls.__module__, "__qualname__": task_cls.__qualname__, "__doc__": task_cls.__doc__}
        _PROMPT_LEARNING_CLASSES[task_cls] = type(task_cls.__name__, (PromptLearningMixin, task_cls), names)
    return _PROMPT_LEARNING_CLASSES[task_cls]


_PROMPT_LEARNING_CLASSES = {}


class PromptLearningMixin:
    """PeftModel for prompt tuning, P-tuning and prefix tuning (PeftModel.__new__ puts it in front of the task class).

    self.base_model is the transformers model itself, as in PEFT, and is never changed: each adapter is a prompt
    encoder, and forward puts its virtual tokens in (or runs the model alone inside disable_adapter()).
    """

    _adapters_disabled = False

    def _setup(self, model, peft_config, adapter_name):
        self._peft_config = {}
        self.base_model = model
        self._add_adapter(adapter_name, peft_config)

    @property
    def peft_config(self):
        return self._peft_config

    def get_base_model(self):
        return self.base_model

    def _add_adapter(self, adapter_name, peft_config):
        self._peft_config[adapter_name] = peft_config
        self._setup_prompt_encoder(adapter_name)

    def set_adapter(self, adapter_name):
        if adapter_name not in self.peft_config:
            raise ValueError(f"Adapter {adapter_name} not found.")
        self.active_adapter = adapter_name
        for wrapper in self._modules_to_save_wrappers():
            wrapper.set_adapter(adapter_name)

    def _delete_adapter(self, adapter_name):
        del self._peft_config[adapter_name]
        del self.prompt_encoder[adapter_name]
        del self.prompt_tokens[adapter_name]
        for wrapper in self._modules_to_save_wrappers():
            wrapper.delete_adapter(adapter_name)

    @contextlib.contextmanager
    def disable_adapter(self):
        """`with model.disable_adapter():` runs the base model without virtual tokens or modules_to_save copies."""
        wrappers = self._modules_to_save_wrappers()
        self._adapters_disabled = True
        for w in wrappers:
            w.disabled = True
        try:
            yield
        finally:
            self._adapters_disabled = False
            for w in wrappers:
                w.disabled = False

    def forward(self, *args, **kwargs):
        """The virtual tokens go in first, as the task class's _forward_prompt_learning says."""
        if self._adapters_disabled:
            return self.base_model(*args, **kwargs)
        return self._forward_prompt_learning(*args, **kwargs)

    def generate(self, input_ids=None, **kwargs):
        """Token ids without the virtual tokens; the first step feeds them, the key/value cache keeps them."""
        if self._adapters_disabled:
            return self.base_model.generate(input_ids=input_ids, **kwargs)
        return _PromptedModel(self).generate(input_ids=input_ids, **kwargs)

    # -- the prompt encoders -------------------------------------------------------------------------------
    def _setup_prompt_encoder(self, adapter_name):
        from .mapping import PEFT_TYPE_TO_PROMPT_ENCODER_MAPPING

        config = self.peft_config[adapter_name]
        model = self.base_model
        prepare_prompt_learning_config(config, model.config)
        if config.peft_type == PeftType.PREFIX_TUNING:
            self._check_accepts_past_key_values(model)
        if "prompt_encoder" not in self._modules:
            self.prompt_encoder = nn.ModuleDict({})
            self.prompt_tokens = {}
        for p in model.parameters():
            p.requires_grad = False  # the base model stays frozen; only the prompt encoder learns
        # registered as a submodule, like PEFT: its weight shows up as `word_embeddings.weight` (shared)
        self.word_embeddings = model.get_input_embeddings()
        encoder_cls = PEFT_TYPE_TO_PROMPT_ENCODER_MAPPING[str(config.peft_type)]
        if config.peft_type == PeftType.PROMPT_TUNING:
            encoder = encoder_cls(config, self.word_embeddings)
        else:
            encoder = encoder_cls(config)
        self.prompt_encoder[adapter_name] = encoder
        self.prompt_tokens[adapter_name] = np.arange(config.num_virtual_tokens * config.num_transformer_submodules)
        self._wrap_modules_to_save(config, adapter_name)
        if config.inference_mode:
            encoder.requires_grad_(False)

    @staticmethod
    def _check_accepts_past_key_values(model):
        # the stack that runs the layers names the argument (OPTModel only passes **kwargs on to OPTDecoder)
        if not any("past_key_values" in inspect.signature(m.forward).parameters for m in model.modules()):
            raise NotImplementedError(
                f"Prefix tuning needs a model that takes past_key_values; tinypeft's {type(model).__name__} "
                "does not (PEFT refuses this too: 'Model does not support past key values'). Use prompt tuning or "
                "P-tuning instead."
            )

    def _wrap_modules_to_save(self, config, adapter_name):
        """A trainable copy of each module named in modules_to_save (a SEQ_CLS head), as in LoRA's tuner."""
        for module_name in dict.fromkeys(config.modules_to_save or []):
            for key, module in list(self.base_model.named_modules()):
                if not key or not re.match(rf"(^|.*\.){module_name}$", key):
                    continue
                parent_name, _, name = key.rpartition(".")
                parent = self.base_model.get_submodule(parent_name) if parent_name else self.base_model
                if isinstance(module, ModulesToSaveWrapper):
                    module.update(adapter_name)
                    module.set_adapter(adapter_name)
                elif not isinstance(parent, ModulesToSaveWrapper) and ".modules_to_save." not in key:
                    setattr(parent, name, ModulesToSaveWrapper(module, adapter_name))

    def _modules_to_save_wrappers(self):
        return [m for m in self.base_model.modules() if isinstance(m, ModulesToSaveWrapper)]

    # -- the virtual tokens --------------------------------------------------------------------------------
    def _prompt_table(self, adapter_name):
        """[n, width] rows for one sequence: the stored table (loaded adapters) or the encoder's output."""
        config = self.peft_config[adapter_name]
        encoder = self.prompt_encoder[adapter_name]
        tokens = self.prompt_tokens[adapter_name]
        if config.peft_type == PeftType.PREFIX_TUNING:
            tokens = tokens[: config.num_virtual_tokens]
        if config.inference_mode:
            return encoder.embedding.weight  # the table as saved
        return encoder(tokens[None])[0]  # [1, n] -> [n, width]; one run, then broadcast to the batch

    def get_prompt(self, batch_size):
        """Prompt tuning / P-tuning: [B, n, d]. Prefix tuning: per layer (key, value), each [B, H, N, hd]."""
        config = self.active_peft_config
        table = self._prompt_table(self.active_adapter)
        prompts = table.unsqueeze(0).expand(batch_size, *table.shape)  # [n, w] -> [B, n, w]
        if config.peft_type != PeftType.PREFIX_TUNING:
            return prompts
        N, L, H = config.num_virtual_tokens, config.num_layers, config.num_attention_heads
        hd = config.token_dim // H
        kv = prompts.view(batch_size, N, 2 * L, H, hd)  # [B, N, 2L * H * hd] -> [B, N, 2L, H, hd]
        if config.num_transformer_submodules == 2:
            # PEFT 0.21's encoder-decoder layout: the 2L entries twice over, 4 per decoder layer
            # (self k, self v, cross k, cross v); the cross pair is then dropped (an empty cross cache)
            kv = cat([kv, kv], dim=2)  # [B, N, 4L, H, hd]
        kv = kv.permute(2, 0, 3, 1, 4)  # [entries, B, H, N, hd]
        step = 2 * config.num_transformer_submodules
        return tuple((kv[step * i], kv[step * i + 1]) for i in range(L))

    def get_prompt_embedding_to_save(self, adapter_name):
        """The table the adapter file stores under `prompt_embeddings`: [n, width] float32."""
        with_grad = self._prompt_table(adapter_name)
        return np.ascontiguousarray(as_numpy(with_grad, np.float32))

    # -- the file ------------------------------------------------------------------------------------------
    def prompt_learning_state_dict(self, adapter_name):
        """{"prompt_embeddings": [n, width]} plus any modules_to_save copies under `base_model.<path>`."""
        out = {"prompt_embeddings": self.get_prompt_embedding_to_save(adapter_name)}
        for k, v in self.state_dict().items():
            if f".modules_to_save.{adapter_name}." in k:
                out[_to_file_key(k, adapter_name)] = np.ascontiguousarray(as_numpy(v, np.float32))
        return out

    def load_prompt_learning_state_dict(self, file_state, adapter_name):
        """The stored table goes into the encoder's `embedding` (as PEFT does); returns (missing, unexpected)."""
        params = self.state_dict(keep_vars=True)
        wanted = {_to_file_key(k, adapter_name): k for k in params if f".modules_to_save.{adapter_name}." in k}
        wanted["prompt_embeddings"] = f"prompt_encoder.{adapter_name}.embedding.weight"
        return copy_file_state(self, params, file_state, wanted)

    # -- running -------------------------------------------------------------------------------------------
    def _prompt_kwargs(self, input_ids, attention_mask, inputs_embeds, kwargs, prefix_labels=None):
        """Everything the frozen model gets: virtual tokens in, mask and positions shifted by N.

        prefix_labels: labels to lengthen by N ignored (-100) positions (causal LM, token classification).
        """
        config = self.active_peft_config
        N = config.num_virtual_tokens
        B = (inputs_embeds if input_ids is None else as_array(input_ids)).shape[0]
        if attention_mask is not None:
            mask = as_array(attention_mask)
            attention_mask = np.concatenate([np.ones((B, N), mask.dtype), mask], axis=1)  # [B, N + T]
        kwargs = dict(kwargs, attention_mask=attention_mask)
        if config.peft_type == PeftType.PREFIX_TUNING:
            if kwargs.get("position_ids") is not None:
                kwargs["position_ids"] = as_array(kwargs["position_ids"]) + N  # the real tokens come after the prefix
            kwargs["past_key_values"] = self.get_prompt(B)
            return dict(kwargs, input_ids=input_ids, inputs_embeds=inputs_embeds)
        # prompt tuning, P-tuning: PEFT drops position_ids (the model counts from the first virtual token)
        kwargs.pop("position_ids", None)
        if kwargs.get("token_type_ids") is not None:
            tt = as_array(kwargs["token_type_ids"])
            kwargs["token_type_ids"] = np.concatenate([np.zeros((B, N), np.int64), tt.astype(np.int64)], axis=1)
        if prefix_labels is not None:
            labels = as_array(prefix_labels)
            kwargs["labels"] = np.concatenate([np.full((B, N), -100, labels.dtype), labels], axis=1)
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)  # [B, T] -> [B, T, d]
        prompts = self.get_prompt(B)
        if config.num_transformer_submodules == 2:
            prompts = prompts[:, :N]  # seq2seq: only the first N rows go to the encoder
        if prompts.dtype != inputs_embeds.dtype:
            prompts = prompts.to(inputs_embeds.dtype)
        kwargs["inputs_embeds"] = cat([prompts, inputs_embeds], dim=1)  # [B, N + T, d]
        return kwargs


class _PromptedModel(GenerationMixin):
    """The base model as generate() sees it, with the virtual tokens put in on the first step.

    After that first step they live in the key/value cache (prompt tuning: as the cache entries of the first
    N positions; prefix tuning: as the cache itself), so later steps feed only the newest token and a mask
    that still counts the N virtual positions. Without the cache every step starts over, prompts included.
    """

    def __init__(self, peft_model):
        self.peft_model = peft_model
        self.model = peft_model.get_base_model()
        self.config = self.model.config
        self.generation_config = self.model.generation_config

    def __call__(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None, **kwargs):
        pm = self.peft_model
        config = pm.active_peft_config
        if self.config.is_encoder_decoder:
            N = config.num_virtual_tokens
            mask = as_array(attention_mask)
            if config.peft_type != PeftType.PREFIX_TUNING:  # the encoder output includes the N virtual tokens
                kwargs["attention_mask"] = np.concatenate([np.ones((mask.shape[0], N), mask.dtype), mask], axis=1)
            else:
                kwargs["attention_mask"] = mask
                if past_key_values is None:
                    past_key_values = pm.get_prompt(mask.shape[0])
            return self.model(past_key_values=past_key_values, **kwargs)
        if past_key_values is None:
            kw = pm._prompt_kwargs(input_ids, attention_mask, None, dict(kwargs, position_ids=position_ids))
            return self.model(**kw)
        N = config.num_virtual_tokens
        mask = as_array(attention_mask)
        mask = np.concatenate([np.ones((mask.shape[0], N), mask.dtype), mask], axis=1)
        if config.peft_type == PeftType.PREFIX_TUNING:
            position_ids = as_array(position_ids) + N
        else:
            position_ids = None  # as on the first step: positions run on from the cache, virtual tokens included
        return self.model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids,
                          past_key_values=past_key_values, **kwargs)

    def get_encoder(self):
        pm, encoder = self.peft_model, self.model.get_encoder()
        if pm.active_peft_config.peft_type == PeftType.PREFIX_TUNING:
            return encoder  # PEFT 0.21 gives the encoder no prefix

        def encode(input_ids=None, attention_mask=None):
            kw = pm._prompt_kwargs(input_ids, attention_mask, None, {})
            return encoder(inputs_embeds=kw["inputs_embeds"], attention_mask=kw["attention_mask"])

        return encode


__all__ = ["PromptLearningMixin", "prepare_prompt_learning_config", "with_prompt_learning"]
