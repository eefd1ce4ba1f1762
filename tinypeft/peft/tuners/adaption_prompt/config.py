"""AdaptionPromptConfig: PEFT's fields for Llama-Adapter."""
from dataclasses import dataclass, field
from typing import Optional

from ...config import PeftConfig, PeftType

# model_type -> the attention modules' name, as PEFT's TRANSFORMERS_MODEL_CONFIG (less "mistral": no such model here)
TRANSFORMERS_MODEL_CONFIG = {"llama": "self_attn", "gpt2": "attn"}


@dataclass
class AdaptionPromptConfig(PeftConfig):
    """Llama-Adapter: `adapter_len` prompt vectors per layer in the top `adapter_layers` attention modules.

    target_modules: the attention modules' name (one string, matched as a path suffix); None takes the model
        type's ("self_attn" for Llama, "attn" for GPT-2).
    adapter_len: prompt vectors per adapted layer. adapter_layers: how many layers, counted from the top.
    """

    target_modules: Optional[str] = field(default=None, metadata={"help": "the attention modules' name"})
    adapter_len: Optional[int] = field(default=None, metadata={"help": "prompt vectors per adapted layer"})
    adapter_layers: Optional[int] = field(default=None, metadata={"help": "adapted layers, from the top"})

    @property
    def is_adaption_prompt(self):
        return True

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = PeftType.ADAPTION_PROMPT


def prepare_config(peft_config, model):
    """Fill in target_modules from the model type; refuse model types without an adapted attention."""
    model_type = model.config.model_type
    if model_type not in TRANSFORMERS_MODEL_CONFIG:
        raise ValueError(f"Unsupported model type for adaption prompt: '{model_type}'.")
    for name in ("adapter_len", "adapter_layers"):
        value = getattr(peft_config, name)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"AdaptionPromptConfig.{name} must be a positive int, got {value!r}.")
    if peft_config.target_modules is None:
        peft_config.target_modules = TRANSFORMERS_MODEL_CONFIG[model_type]
    return peft_config
