"""PreTrainedModel: build a model from a config, load transformers-format weights, save them back.

Loading follows transformers: keys are matched by name (with or without the base-model prefix, so a
BertModel checkpoint loads into BertForSequenceClassification), tied weights are shared rather than
copied, weights the checkpoint lacks (a new classification head) are initialised and reported as
"newly initialized", and extra keys are reported, never fatal. Parameters are created empty and filled
straight from the checkpoint, so a model is never held twice in memory.
"""
import logging
from pathlib import Path

import numpy as np

from .. import nn
from ..checkpoint_io import load_checkpoint, save_file_atomic
from ..hub import resolve_model_dir
from ..tensor import Tensor
from ..utils.generic import AttributeDict
from .generation_config import GenerationConfig

logger = logging.getLogger("tinypeft")


def embed_inputs(embed_tokens, input_ids, inputs_embeds, names=("input_ids", "inputs_embeds")):
    """A decoder's input vectors [B, T, D]: exactly one of input_ids [B, T] (looked up in embed_tokens) and
    inputs_embeds (taken as they are: prompt tuning passes these) must be given."""
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError(f"Pass exactly one of {names[0]} or {names[1]}.")
    return embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds


class ModelOutput(AttributeDict):
    """A dict whose keys are also attributes (outputs.logits) and whose values index in order (outputs[0])."""

    def __getitem__(self, key):
        if isinstance(key, int):
            return list(v for v in self.values() if v is not None)[key]
        return super().__getitem__(key)

    def to_tuple(self):
        return tuple(v for v in self.values() if v is not None)


def check_output_options(model, output_attentions=None, output_hidden_states=None, return_dict=None):
    """transformers' output switches, taken by every model's forward: their default is what tinypeft returns
    (a ModelOutput with the last hidden state); a value that asks for more is refused by name, not ignored."""
    name = type(model).__name__
    if output_attentions:
        raise NotImplementedError(f"{name}.forward(output_attentions=True): tinypeft does not return attention "
                                  "weights (they are never kept); leave output_attentions unset")
    if output_hidden_states:
        raise NotImplementedError(f"{name}.forward(output_hidden_states=True): tinypeft returns only the last "
                                  "hidden state (the base model's outputs.last_hidden_state); leave "
                                  "output_hidden_states unset")
    if return_dict is False:
        raise NotImplementedError(f"{name}.forward(return_dict=False): tinypeft always returns a ModelOutput; "
                                  "call .to_tuple() on it for a tuple")


def encoder_decoder_output(decoder, encoder_outputs, **decoder_inputs):
    """The decoder of an encoder-decoder model (T5, Whisper) run over the encoder's last hidden state;
    encoder_outputs is a ModelOutput (or dict) or a tuple, as transformers accepts. Returns what transformers'
    Seq2SeqModelOutput holds: the decoder's last_hidden_state and past_key_values, encoder_last_hidden_state."""
    enc = encoder_outputs["last_hidden_state"] if isinstance(encoder_outputs, dict) else encoder_outputs[0]
    dec = decoder(encoder_hidden_states=enc, **decoder_inputs)
    return ModelOutput(last_hidden_state=dec.last_hidden_state, past_key_values=dec.past_key_values,
                       encoder_last_hidden_state=enc)


# what from_pretrained's torch_dtype / dtype may say: tinypeft loads every floating weight as float32
FLOAT32_NAMES = ("float32", "torch.float32", "auto")


def check_dtype(kwargs):
    """Pop torch_dtype and dtype (transformers 5's name) from from_pretrained's kwargs: float32, "auto" and
    None load as always (float32, tinypeft's compute dtype, as "auto" does for a float32 checkpoint); any
    other dtype is refused by name rather than silently loaded as float32."""
    for key in ("torch_dtype", "dtype"):
        value = kwargs.pop(key, None)
        if value is None:
            continue
        text = value if isinstance(value, str) else str(value)
        try:
            text = text if text in FLOAT32_NAMES else str(np.dtype(value))
        except TypeError:
            pass
        if text not in FLOAT32_NAMES:
            raise ValueError(f"from_pretrained({key}={value!r}): tinypeft computes in float32 only (NumPy on the "
                             f"CPU), so the weights cannot be loaded as {text}; pass {key}=\"float32\" or "
                             "\"auto\", or leave it out (to save memory, load 8- or 4-bit weights with "
                             "quantization_config=BitsAndBytesConfig(...))")


class PreTrainedModel(nn.Module):
    config_class = None
    base_model_prefix = ""
    # checkpoint keys that are buffers or derived, safe to ignore (regexes)
    _keys_to_ignore_on_load_unexpected = []
    _keys_to_ignore_on_load_missing = []

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.name_or_path = getattr(config, "name_or_path", "")

    # -- hooks each architecture fills --------------------------------------------------------------------
    def _init_weights(self, module):
        """transformers' default: N(0, initializer_range) for Linear/Embedding, LayerNorm = (1, 0)."""
        std = getattr(self.config, "initializer_range", 0.02)
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)
            if module.padding_idx is not None:
                with_no_grad_zero_row(module.weight, module.padding_idx)
        elif isinstance(module, (nn.LayerNorm, nn.RMSNorm)):
            if getattr(module, "weight", None) is not None:
                nn.init.ones_(module.weight)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    def get_input_embeddings(self):
        """The token embedding. A task model (GPT2LMHeadModel, ...) asks its base model, as transformers does."""
        base = self.base_model
        if base is self:
            raise NotImplementedError(f"{type(self).__name__} defines no get_input_embeddings.")
        return base.get_input_embeddings()

    def get_output_embeddings(self):
        return None

    def tie_weights(self):
        """Share the input embedding matrix with the LM head when the config asks for it."""
        out = self.get_output_embeddings()
        if out is not None and getattr(self.config, "tie_word_embeddings", True):
            out.weight = self.get_input_embeddings().weight

    @property
    def base_model(self):
        return getattr(self, self.base_model_prefix, self) if self.base_model_prefix else self

    # -- gradient checkpointing (tinypeft.utils.checkpoint) ------------------------------------------------
    supports_gradient_checkpointing = True

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None):
        """Recompute each block's activations in backward instead of keeping them (while training)."""
        from .modeling_layers import set_gradient_checkpointing

        kwargs = dict(gradient_checkpointing_kwargs or {})
        unknown = set(kwargs) - {"use_reentrant", "preserve_rng_state"}
        if unknown or not kwargs.get("preserve_rng_state", True):
            raise ValueError(f"gradient_checkpointing_kwargs {kwargs}: tinypeft takes use_reentrant only, and always "
                             "preserves the random state (so dropout masks repeat).")
        if not set_gradient_checkpointing(self, True):
            raise ValueError(f"{type(self).__name__} does not support gradient checkpointing.")

    def gradient_checkpointing_disable(self):
        from .modeling_layers import set_gradient_checkpointing

        set_gradient_checkpointing(self, False)

    @property
    def is_gradient_checkpointing(self):
        return any(getattr(m, "gradient_checkpointing", False) for m in self.modules())

    def enable_input_require_grads(self):
        """Make the input embeddings' output require grad (transformers' hook for reentrant checkpointing)."""
        emb = self.get_input_embeddings()
        forward = emb.forward

        def forward_requiring_grad(*args, **kwargs):
            return forward(*args, **kwargs).requires_grad_(True)

        emb.forward = forward_requiring_grad

    def num_parameters(self, only_trainable=False):
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config, **kwargs):
        model = cls(config, **kwargs)
        model.apply(model._init_weights)
        model.tie_weights()
        return model

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, config=None, revision=None, **kwargs):
        path = resolve_model_dir(pretrained_model_name_or_path, revision=revision)
        quantization_config = kwargs.pop("quantization_config", None)
        check_dtype(kwargs)
        if config is None:
            config = cls.config_class.from_pretrained(path, **kwargs)
        config.name_or_path = str(pretrained_model_name_or_path)
        with nn.init_empty_weights():
            model = cls(config)
        model.name_or_path = str(pretrained_model_name_or_path)
        model.tie_weights()
        if quantization_config is not None:  # quantized layer by layer as the tensors stream in
            from ..quantization.loading import prepare_quantized_load

            state = prepare_quantized_load(model, quantization_config, path)
        else:
            state = load_checkpoint(path)
        model._load_checkpoint(state, str(pretrained_model_name_or_path))
        if hasattr(type(model), "generation_config"):  # generation_config.json, else config.json's special tokens
            model.generation_config = GenerationConfig.from_pretrained(path, config=config)
        model.eval()  # like transformers: dropout off until train() is called
        return model

    def _load_checkpoint(self, state, source):
        import re

        params = dict(self.named_parameters())
        own = dict(params)
        own.update(dict(self.named_buffers()))
        prefix = self.base_model_prefix + "." if self.base_model_prefix else ""
        has_prefixed = any(k.startswith(prefix) for k in own) if prefix else False

        def to_model_key(k):
            # a base-model checkpoint into a task model, or a task checkpoint into the base model
            if prefix and has_prefixed and k not in own and prefix + k in own:
                return prefix + k
            if prefix and not has_prefixed and k.startswith(prefix) and k[len(prefix):] in own:
                return k[len(prefix):]
            return k

        loaded, unexpected = set(), []
        for key, array in state.items():
            mk = to_model_key(key)
            target = own.get(mk)
            if target is None:
                if not any(re.search(p, key) for p in self._keys_to_ignore_on_load_unexpected):
                    unexpected.append(key)
                continue
            if tuple(array.shape) != tuple(target.shape):
                raise ValueError(
                    f"Checkpoint {source}: {key} has shape {tuple(array.shape)} but the model "
                    f"({type(self).__name__}) expects {tuple(target.shape)}. Check that config.json "
                    "matches the weights."
                )
            if array.dtype.kind != "f" and mk in params and getattr(target, "quant_kind", None) != "gguf":
                raise ValueError(f"Checkpoint {source}: {key} is stored as {array.dtype} but is a float weight of "
                                 f"{type(self).__name__}; the file is mislabelled or not this model's.")
            if mk in loaded:
                continue  # a tied weight: the first copy wins
            target.data = np.ascontiguousarray(array, dtype=np.float32 if array.dtype.kind == "f" else array.dtype)
            loaded.add(mk)

        # tied parameters share one object: once loaded through any name, all names are loaded
        ids_loaded = {id(own[k]) for k in loaded}
        missing = [k for k, p in own.items() if id(p) not in ids_loaded]
        if missing:
            names = {k.rsplit(".", 1)[0] for k in missing}
            for name, module in self.named_modules():
                if name in names:
                    module._materialize()
                    self._init_weights(module)
            self.tie_weights()
            reported = [k for k in missing if not any(re.search(p, k) for p in self._keys_to_ignore_on_load_missing)]
            if reported:
                logger.warning(
                    "Some weights of %s were not initialized from the model checkpoint at %s and are newly "
                    "initialized: %s\nYou should probably TRAIN this model on a down-stream task to be able "
                    "to use it for predictions and inference.",
                    type(self).__name__, source, sorted(reported),
                )
        if unexpected:
            logger.warning(
                "Some weights of the model checkpoint at %s were not used when initializing %s: %s",
                source, type(self).__name__, sorted(unexpected),
            )
        self.loading_info = {"missing_keys": sorted(missing), "unexpected_keys": sorted(unexpected)}

    def save_pretrained(self, save_directory):
        """config.json + model.safetensors (tied weights stored once), readable by transformers."""
        if getattr(self, "is_quantized", False):
            raise NotImplementedError(
                "save_pretrained: this model was loaded with a quantization_config and tinypeft does not write "
                "bitsandbytes' serialized 4-/8-bit format (nor GGUF files). Save the adapter (PeftModel.save_pretrained), or load the "
                "model without quantization_config, merge, and save that.")
        save_directory = Path(save_directory)
        save_directory.mkdir(parents=True, exist_ok=True)
        self.config.save_pretrained(save_directory)
        generation_config = getattr(self, "generation_config", None)
        if isinstance(generation_config, GenerationConfig):  # None: a Whisper made by from_config has no file
            generation_config.save_pretrained(save_directory)
        tensors, seen = {}, set()
        for k, p in self.state_dict().items():
            arr = p.data if isinstance(p, Tensor) else p
            if id(arr) in seen:
                continue
            seen.add(id(arr))
            tensors[k] = np.ascontiguousarray(np.asarray(arr))
        save_file_atomic(tensors, save_directory / "model.safetensors", metadata={"format": "pt"})


def with_no_grad_zero_row(weight, row):
    if not nn.init.is_unallocated(weight):  # a placeholder (init_empty_weights) has no row to zero yet
        weight.data[row] = 0
