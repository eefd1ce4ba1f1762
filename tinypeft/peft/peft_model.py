"""PeftModel: a transformers model plus named adapters, with PEFT's API and file format.

    model = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM"))
    model.print_trainable_parameters()
    model.save_pretrained("out")          # adapter_config.json + adapter_model.safetensors
    PeftModel.from_pretrained(base, "out")

The task classes (PeftModelForCausalLM, ...) differ only in how prompt-learning methods feed their
virtual tokens (_forward_prompt_learning); for LoRA and IA3 they pass everything straight to the wrapped model.
Prompt learning's own behaviour (adapters as prompt encoders, the model left untouched) is PromptLearningMixin,
in prompt_learning.py.
"""
import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np

from .. import nn
from ..checkpoint_io import consistent_read, folder_lock, load_file, save_file_atomic
from ..tensor import as_array
from ..hub import resolve_model_dir
from .config import CONFIG_NAME, PeftConfig, check_adapter_name
from .prompt_learning import with_prompt_learning as _with_prompt_learning
from .tuners.tuners_utils import getattr_or_wrapped
from .utils.save_and_load import (SAFETENSORS_WEIGHTS_NAME, check_adapter_file, get_peft_model_state_dict,
                                  set_peft_model_state_dict)


def _tuner_class(peft_type):
    from .mapping import PEFT_TYPE_TO_TUNER_MAPPING

    return PEFT_TYPE_TO_TUNER_MAPPING[str(peft_type)]


class PeftModel(nn.Module):
    """A transformers model with LoRA or IA3 adapters (self.base_model is the tuner that put them in).

    A prompt-learning config gets the same task class with PromptLearningMixin in front (see __new__): there
    the model itself stays untouched and the virtual tokens go in at forward time.
    """

    def __new__(cls, model=None, peft_config=None, adapter_name="default"):
        if peft_config is not None and peft_config.is_prompt_learning:
            cls = _with_prompt_learning(cls)
        return super().__new__(cls)

    def __init__(self, model, peft_config, adapter_name="default"):
        super().__init__()
        check_adapter_name(adapter_name)
        self.active_adapter = adapter_name
        self.peft_type = peft_config.peft_type
        self.special_peft_forward_args = {"adapter_names"}
        self._setup(model, peft_config, adapter_name)
        if getattr(model, "config", None) is not None:
            model.config.use_cache = getattr(model.config, "use_cache", True)

    def _setup(self, model, peft_config, adapter_name):
        self.base_model = _tuner_class(peft_config.peft_type)(model, peft_config, adapter_name)

    # -- configs and adapters ------------------------------------------------------------------------------
    @property
    def peft_config(self):
        return self.base_model.peft_config

    @property
    def active_peft_config(self):
        return self.peft_config[self.active_adapter]

    @property
    def active_adapters(self):
        return [self.active_adapter]

    def get_base_model(self):
        """The transformers model inside (its modules now hold the adapter layers)."""
        return self.base_model.model

    def add_adapter(self, adapter_name, peft_config, low_cpu_mem_usage=False):
        """Add a new (inactive, unless it is the only one) adapter with this config."""
        check_adapter_name(adapter_name)
        if peft_config.peft_type != self.peft_type:
            raise ValueError(
                f"Cannot combine adapters with different peft types. Found {self.peft_type} and {peft_config.peft_type}."
            )
        self._add_adapter(adapter_name, peft_config)

    def _add_adapter(self, adapter_name, peft_config):
        self.base_model.peft_config[adapter_name] = peft_config
        try:
            self.base_model.inject_adapter(self.base_model.model, adapter_name)
        except Exception:
            del self.base_model.peft_config[adapter_name]
            raise
        self.base_model.set_adapter(self.base_model.active_adapter)  # keep the active one active

    def set_adapter(self, adapter_name):
        if adapter_name not in self.peft_config:
            raise ValueError(f"Adapter {adapter_name} not found.")
        self.active_adapter = adapter_name
        self.base_model.set_adapter(adapter_name)
        self.base_model._mark_only_adapters_as_trainable(self.base_model.model)

    def delete_adapter(self, adapter_name):
        if adapter_name not in self.peft_config:
            raise ValueError(f"Adapter {adapter_name} does not exist")
        self._delete_adapter(adapter_name)
        if self.active_adapter == adapter_name:
            self.active_adapter = next(iter(self.peft_config), None)

    def _delete_adapter(self, adapter_name):
        self.base_model.delete_adapter(adapter_name)

    @contextlib.contextmanager
    def disable_adapter(self):
        """`with model.disable_adapter():` runs the base model alone (merged weights are unmerged first)."""
        self.base_model.disable_adapter_layers()
        try:
            yield
        finally:
            self.base_model.enable_adapter_layers()

    # -- counting ------------------------------------------------------------------------------------------
    def get_nb_trainable_parameters(self):
        """(trainable, all): every parameter counted once (tied weights once), the adapters' included."""
        trainable = total = 0
        for _, p in self.named_parameters():
            n = p.numel()
            total += n
            if p.requires_grad:
                trainable += n
        return trainable, total

    def print_trainable_parameters(self):
        trainable, total = self.get_nb_trainable_parameters()
        print(f"trainable params: {trainable:,d} || all params: {total:,d} || trainable%: {100 * trainable / total:.4f}")

    # -- running -------------------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        """The wrapped model's forward: the adapter layers inside it do the work."""
        return self.base_model(*args, **kwargs)

    def _forward_prompt_learning(self, input_ids=None, attention_mask=None, inputs_embeds=None, **kwargs):
        """How this task feeds virtual tokens (PromptLearningMixin.forward calls it; task classes override it):
        prompts prepended (mask lengthened, token_type_ids given N zeros), or the prefix as past_key_values."""
        kwargs = self._prompt_kwargs(input_ids, attention_mask, inputs_embeds, kwargs)
        return self.get_base_model()(**kwargs)

    def generate(self, *args, **kwargs):
        return self.get_base_model().generate(*args, **kwargs)

    def __getattr__(self, name):
        return getattr_or_wrapped(self, name, "base_model")  # merge_and_unload, merge_adapter, config, ...

    # -- files ---------------------------------------------------------------------------------------------
    def save_pretrained(self, save_directory, selected_adapters=None, path_initial_model_for_weight_conversion=None,
                        **kwargs):
        """PEFT's layout: the "default" adapter in save_directory, any other adapter X in save_directory/X.

        path_initial_model_for_weight_conversion: the folder where the PiSSA/OLoRA adapter was saved before training
        (with init_lora_weights set to True, as PEFT's docs say); the adapter is then saved as a plain LoRA for the
        original base weights: delta W = s (B A - B0 A0) = s [B | -B0] [A ; A0], so r and lora_alpha double."""
        save_directory = Path(save_directory)
        if save_directory.is_file():
            raise ValueError(f"Provided path ({save_directory}) should be a directory, not a file")
        with folder_lock(save_directory):  # two processes saving here would mix one's config with the other's weights
            self._save_locked(save_directory, selected_adapters, path_initial_model_for_weight_conversion)

    def _converted_to_lora(self, config, state, initial):
        """(config, state) of a PiSSA/OLoRA adapter rewritten as a LoRA on the unmodified base weights."""
        import dataclasses

        if config.peft_type != "LORA":
            raise NotImplementedError(f"path_initial_model_for_weight_conversion converts LoRA (PiSSA/OLoRA) adapters; "
                                      f"this one is {config.peft_type}.")
        if config.use_rslora and (config.rank_pattern or config.alpha_pattern):
            raise ValueError("Passing `path_initial_model_for_weight_conversion` to `save_pretrained` is not supported "
                             "when using `rank_pattern` or `alpha_pattern` at the same time as `use_rslora=True`.")
        initial = Path(initial)
        name = initial.name
        if str(PeftConfig.from_pretrained(initial).init_lora_weights).lower().startswith(("pissa", "olora")):
            raise ValueError("The `init_lora_weights` parameter of the initial adapter should be set to `True`. "
                             "Otherwise, `self.load_adapter` will subtract the decomposed values again based on the "
                             "residual model.")
        self.load_adapter(initial.parent, adapter_name=name, subfolder=name)
        try:
            state0 = get_peft_model_state_dict(self, adapter_name=name)
        finally:
            self.delete_adapter(name)
        out = {}
        for k, v in state.items():
            if ".lora_A." in k:
                out[k] = np.concatenate([v, state0[k]], axis=0)       # [A ; A0]   [2r, in]
            elif ".lora_B." in k:
                out[k] = np.concatenate([v, -state0[k]], axis=1)      # [B | -B0]  [out, 2r]
        alpha = config.lora_alpha * (2 ** 0.5 if config.use_rslora else 2)  # the same scaling at twice the rank
        converted = dataclasses.replace(
            config, init_lora_weights=True, r=2 * config.r, lora_alpha=alpha,
            rank_pattern={k: 2 * v for k, v in (config.rank_pattern or {}).items()},
            alpha_pattern={k: 2 * v for k, v in (config.alpha_pattern or {}).items()})
        return converted, out

    def _save_locked(self, save_directory, selected_adapters, initial=None):
        names = list(self.peft_config) if selected_adapters is None else list(selected_adapters)
        for name in names:
            if name not in self.peft_config:
                raise ValueError(f"Adapter {name!r} does not exist; adapters: {list(self.peft_config)}.")
            out = save_directory if name == "default" else save_directory / name
            out.mkdir(parents=True, exist_ok=True)
            state = get_peft_model_state_dict(self, adapter_name=name)
            config = self.peft_config[name]
            if initial is not None:
                config, state = self._converted_to_lora(config, state, initial)
            save_file_atomic(state, out / SAFETENSORS_WEIGHTS_NAME, metadata={"format": "pt"})
            if config.base_model_name_or_path is None:
                config.base_model_name_or_path = getattr(self.get_base_model(), "name_or_path", None) or None
            if config.task_type is None:  # as PEFT: name the base class, so AutoPeftModel can rebuild it
                base = self.get_base_model()
                model_type = getattr(getattr(base, "config", None), "model_type", None)
                library = f"transformers.models.{model_type}.modeling_{model_type}" if model_type else type(base).__module__
                config.auto_mapping = {"base_model_class": type(base).__name__, "parent_library": library}
            inference_mode = config.inference_mode
            config.save_pretrained(out)
            config.inference_mode = inference_mode
            if str(config.task_type) in LABELLED_TASKS:  # the head's label names live in the base config
                self.get_base_model().config.save_pretrained(out)
            _write_model_card(out, config)

    @classmethod
    def from_pretrained(cls, model, model_id, adapter_name="default", is_trainable=False, config=None, **kwargs):
        """Wrap `model` with the adapter saved at `model_id` (frozen unless is_trainable=True)."""
        path = _adapter_dir(model_id, kwargs.get("subfolder"))
        check_adapter_name(adapter_name)
        config, state = _read_adapter(path, config)
        config.inference_mode = not is_trainable
        task_cls = MODEL_TYPE_TO_PEFT_MODEL_MAPPING.get(str(config.task_type), PeftModel) if cls is PeftModel else cls
        _restore_label_names(model, path, config)
        peft_model = task_cls(model, config, adapter_name)
        peft_model._load_weights(path, adapter_name, state)
        if not is_trainable:
            for p in peft_model.parameters():
                p.requires_grad = False
            peft_model.eval()
        return peft_model

    def load_adapter(self, model_id, adapter_name, is_trainable=False, **kwargs):
        """Add the adapter saved at model_id under adapter_name, without activating it."""
        path = _adapter_dir(model_id, kwargs.get("subfolder"))
        config, state = _read_adapter(path)
        config.inference_mode = not is_trainable
        self.add_adapter(adapter_name, config)
        result = self._load_weights(path, adapter_name, state)
        if not is_trainable:
            for n, p in self.named_parameters():
                if adapter_name in n.split("."):
                    p.requires_grad = False
        return result

    def _load_weights(self, path, adapter_name, state=None):
        file = path / SAFETENSORS_WEIGHTS_NAME
        if state is None and not file.is_file():
            raise ValueError(f"Can't find weights for {path} in {path} ({SAFETENSORS_WEIGHTS_NAME} is missing).")
        state = load_file(file) if state is None else state
        missing, unexpected = set_peft_model_state_dict(self, state, adapter_name)
        if missing or unexpected:
            import warnings

            warnings.warn(f"Loading adapter {adapter_name!r} from {path}: missing keys {missing}, "
                          f"unexpected keys {unexpected}.")
        return missing, unexpected


def _read_adapter(path, config=None):
    """(config, weights) of one save, read as a consistent pair (a save in progress is waited for), the
    config's sizes checked against the weights' shapes before anything is built."""
    files = [path / CONFIG_NAME, path / SAFETENSORS_WEIGHTS_NAME]

    def read():
        conf = config or PeftConfig.from_pretrained(path)
        if not files[1].is_file():
            return conf, None
        check_adapter_file(conf, files[1])
        return conf, load_file(files[1])

    return consistent_read(path, files, read)


LABELLED_TASKS = ("SEQ_CLS", "TOKEN_CLS")
BASE_CONFIG_NAME = "config.json"  # a classification adapter's folder keeps its base config: num_labels, id2label


def saved_label_names(path):
    """{"id2label": ..., "label2id": ...} from the config.json saved beside a classification adapter, or {}."""
    from ..models.configuration_utils import read_json_object

    file = Path(path) / BASE_CONFIG_NAME
    if not file.is_file():
        return {}
    saved = read_json_object(file)
    id2label = {int(k): v for k, v in (saved.get("id2label") or {}).items()}
    if not id2label:
        return {}
    return {"id2label": id2label, "label2id": {v: k for k, v in id2label.items()}}


def _restore_label_names(model, path, config):
    """The names the classifier was trained with, put back on a base model built with placeholder names
    (LABEL_0...) and the same number of labels; names the caller gave are kept."""
    if str(config.task_type) not in LABELLED_TASKS:
        return
    labels = saved_label_names(path)
    base = getattr(model, "config", None)
    if not labels or base is None or len(labels["id2label"]) != getattr(base, "num_labels", None):
        return
    if base.id2label == {i: f"LABEL_{i}" for i in range(base.num_labels)}:
        base.id2label, base.label2id = labels["id2label"], labels["label2id"]


def _adapter_dir(model_id, subfolder=None):
    path = Path(model_id)
    if not path.is_dir():
        path = resolve_model_dir(model_id)
    return path / subfolder if subfolder else path


def _write_model_card(directory, config):
    text = (
        "---\nlibrary_name: peft\n"
        + (f"base_model: {config.base_model_name_or_path}\n" if config.base_model_name_or_path else "")
        + f"---\n\n# Adapter\n\nA {config.peft_type} adapter saved by tinypeft in Hugging Face PEFT's format.\n"
    )
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, Path(directory) / "README.md")


class PeftModelForCausalLM(PeftModel):
    def _forward_prompt_learning(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, **kwargs):
        """Prompt tuning / P-tuning: logits for N + T positions, labels lengthened by N ignored ones."""
        if self.active_peft_config.peft_type == "PREFIX_TUNING":
            kwargs = self._prompt_kwargs(input_ids, attention_mask, inputs_embeds, dict(kwargs, labels=labels))
        else:
            kwargs = self._prompt_kwargs(input_ids, attention_mask, inputs_embeds, kwargs, prefix_labels=labels)
        return self.get_base_model()(**kwargs)


class PeftModelForSeq2SeqLM(PeftModel):
    def _forward_prompt_learning(self, input_ids=None, attention_mask=None, inputs_embeds=None, decoder_input_ids=None,
                                 decoder_attention_mask=None, decoder_inputs_embeds=None, labels=None, **kwargs):
        """Prompt tuning / P-tuning feed the encoder; prefix tuning feeds the decoder's self-attention."""
        dec = dict(decoder_input_ids=decoder_input_ids, decoder_inputs_embeds=decoder_inputs_embeds, labels=labels)
        config = self.active_peft_config
        if config.peft_type == "PREFIX_TUNING":
            if decoder_attention_mask is not None:
                m = as_array(decoder_attention_mask)
                decoder_attention_mask = np.concatenate([np.ones((m.shape[0], config.num_virtual_tokens), m.dtype), m], 1)
            B = (inputs_embeds if input_ids is None else as_array(input_ids)).shape[0]
            kwargs.pop("position_ids", None)
            return self.get_base_model()(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                                         decoder_attention_mask=decoder_attention_mask,
                                         past_key_values=self.get_prompt(B), **dec, **kwargs)
        kwargs = self._prompt_kwargs(input_ids, attention_mask, inputs_embeds, kwargs)
        return self.get_base_model()(decoder_attention_mask=decoder_attention_mask, **dec, **kwargs)


class PeftModelForSequenceClassification(PeftModel):
    def __init__(self, model, peft_config, adapter_name="default"):
        _add_modules_to_save(peft_config, ["classifier", "score"])
        super().__init__(model, peft_config, adapter_name)

    def add_adapter(self, adapter_name, peft_config, low_cpu_mem_usage=False):
        _add_modules_to_save(peft_config, ["classifier", "score"])
        super().add_adapter(adapter_name, peft_config, low_cpu_mem_usage)


class PeftModelForTokenClassification(PeftModel):
    def __init__(self, model, peft_config, adapter_name="default"):
        _add_modules_to_save(peft_config, ["classifier", "score"])
        super().__init__(model, peft_config, adapter_name)

    def _forward_prompt_learning(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, **kwargs):
        """Prompt tuning / P-tuning: N + T token logits; labels get N ignored (-100) positions to match
        (PEFT passes the T labels unchanged, which fails against N + T logits)."""
        if self.active_peft_config.peft_type == "PREFIX_TUNING":
            return super()._forward_prompt_learning(input_ids, attention_mask, inputs_embeds, labels=labels, **kwargs)
        kwargs = self._prompt_kwargs(input_ids, attention_mask, inputs_embeds, kwargs, prefix_labels=labels)
        return self.get_base_model()(**kwargs)


class PeftModelForQuestionAnswering(PeftModel):
    def __init__(self, model, peft_config, adapter_name="default"):
        _add_modules_to_save(peft_config, ["qa_outputs"])
        super().__init__(model, peft_config, adapter_name)


class PeftModelForFeatureExtraction(PeftModel):
    pass


MODEL_TYPE_TO_PEFT_MODEL_MAPPING = {  # task_type -> the PeftModel class get_peft_model and from_pretrained make
    "SEQ_CLS": PeftModelForSequenceClassification,
    "SEQ_2_SEQ_LM": PeftModelForSeq2SeqLM,
    "CAUSAL_LM": PeftModelForCausalLM,
    "TOKEN_CLS": PeftModelForTokenClassification,
    "QUESTION_ANS": PeftModelForQuestionAnswering,
    "FEATURE_EXTRACTION": PeftModelForFeatureExtraction,
}


def _add_modules_to_save(config, names):
    if config.modules_to_save is None:
        config.modules_to_save = list(names)
    else:
        config.modules_to_save = list(config.modules_to_save) + [n for n in names if n not in config.modules_to_save]

