"""AutoPeftModel*: read adapter_config.json, load its base model offline, then the adapter."""
from ..models import auto as model_auto
from ..models.auto import (AutoModel, AutoModelForCausalLM, AutoModelForQuestionAnswering, AutoModelForSeq2SeqLM,
                           AutoModelForSequenceClassification, AutoModelForTokenClassification)
from .config import PeftConfig
from .peft_model import LABELLED_TASKS, MODEL_TYPE_TO_PEFT_MODEL_MAPPING, PeftModel, saved_label_names


TASK_TO_AUTO_MODEL = {  # PEFT's task_type -> the transformers Auto class its base model loads with
    "CAUSAL_LM": AutoModelForCausalLM,
    "SEQ_2_SEQ_LM": AutoModelForSeq2SeqLM,
    "SEQ_CLS": AutoModelForSequenceClassification,
    "TOKEN_CLS": AutoModelForTokenClassification,
    "QUESTION_ANS": AutoModelForQuestionAnswering,
    "FEATURE_EXTRACTION": AutoModel,
}


class _BaseAutoPeftModel:
    _target_class = None  # the transformers Auto class of the base model (a subclass names it, as in PEFT);
    _task_type = None  # from it (TASK_TO_AUTO_MODEL read backwards) come the task
    _target_peft_class = None  # and the PeftModel class (get_peft_model's table)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls._target_class is not None:
            cls._task_type = next(t for t, auto in TASK_TO_AUTO_MODEL.items() if auto is cls._target_class)
            cls._target_peft_class = MODEL_TYPE_TO_PEFT_MODEL_MAPPING[cls._task_type]

    def __init__(self, *args, **kwargs):
        raise EnvironmentError(f"Use {type(self).__name__}.from_pretrained(adapter_path).")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, adapter_name="default", is_trainable=False,
                        config=None, revision=None, **kwargs):
        from .peft_model import _adapter_dir

        path = _adapter_dir(pretrained_model_name_or_path, kwargs.get("subfolder"))
        peft_config = PeftConfig.from_pretrained(path)
        task = str(peft_config.task_type) if peft_config.task_type is not None else None
        if cls._task_type is not None and task != cls._task_type:
            raise ValueError(
                f"Expected target PEFT class: {cls._target_peft_class.__name__}, but you have asked for: "
                f"{task!r} (adapter_config.json's task_type). Use the AutoPeftModel class for that task."
            )
        if not peft_config.base_model_name_or_path:
            raise ValueError(f"{path}/adapter_config.json has no base_model_name_or_path: load the base model "
                             "yourself and use PeftModel.from_pretrained(model, path).")
        base_cls = cls._target_class or (_auto_for_task(task) if task else base_class_without_task(
            peft_config.base_model_name_or_path, peft_config.auto_mapping, revision or peft_config.revision))
        # other kwargs (num_labels=, id2label=, ...) go to the base model, as in PEFT: a classifier
        # adapter needs a base model built with its number of labels
        base_kwargs = {k: v for k, v in kwargs.items() if k != "subfolder"}
        if task in LABELLED_TASKS and not {"num_labels", "id2label"} & set(base_kwargs):
            base_kwargs.update(saved_label_names(path))  # the head's size and names, saved with the adapter
        base = base_cls.from_pretrained(peft_config.base_model_name_or_path,
                                        revision=revision or peft_config.revision, **base_kwargs)
        return cls._target_peft_class.from_pretrained(base, path, adapter_name=adapter_name,
                                                      is_trainable=is_trainable, config=peft_config)


def _auto_for_task(task):
    return TASK_TO_AUTO_MODEL.get(task, AutoModel)


def base_class_without_task(model_name_or_path, auto_mapping=None, revision=None):
    """No task_type (e.g. LoRA on Whisper): the class PEFT recorded in auto_mapping, else the one the base
    model's config.json "architectures" names, among tinypeft's task classes; else the plain AutoModel."""
    config = model_auto.AutoConfig.from_pretrained(model_name_or_path, revision=revision)
    name = (auto_mapping or {}).get("base_model_class")
    if name:
        config.architectures = [name]
        cls = model_auto.architecture_class(config)
        if cls is None:
            raise ValueError(f"adapter_config.json's auto_mapping names {name!r}, which tinypeft does not have "
                             f"for model_type {config.model_type!r}.")
        return cls
    return model_auto.architecture_class(config) or AutoModel


class AutoPeftModel(_BaseAutoPeftModel):
    _target_peft_class = PeftModel


# the base model's Auto class of each (the task and the PeftModel class follow from it)
class AutoPeftModelForCausalLM(_BaseAutoPeftModel): _target_class = AutoModelForCausalLM
class AutoPeftModelForSeq2SeqLM(_BaseAutoPeftModel): _target_class = AutoModelForSeq2SeqLM
class AutoPeftModelForSequenceClassification(_BaseAutoPeftModel): _target_class = AutoModelForSequenceClassification
class AutoPeftModelForTokenClassification(_BaseAutoPeftModel): _target_class = AutoModelForTokenClassification
class AutoPeftModelForQuestionAnswering(_BaseAutoPeftModel): _target_class = AutoModelForQuestionAnswering
class AutoPeftModelForFeatureExtraction(_BaseAutoPeftModel): _target_class = AutoModel
