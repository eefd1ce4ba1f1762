"""PEFT's tables (default target modules per model type) and ModulesToSaveWrapper."""
import copy

from ... import nn

# model_type -> default target_modules when the config leaves them None (PEFT's constants)
TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING = {
    "gpt2": ["c_attn"],
    "opt": ["q_proj", "v_proj"],
    "llama": ["q_proj", "v_proj"],
    "mistral": ["q_proj", "v_proj"],
    "bert": ["query", "value"],
    "t5": ["q", "v"],
    "mt5": ["q", "v"],
}
TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING = {
    "gpt2": ["c_attn", "mlp.c_proj"],
    "opt": ["q_proj", "k_proj", "fc2"],
    "llama": ["k_proj", "v_proj", "down_proj"],
    "mistral": ["k_proj", "v_proj", "down_proj"],
    "bert": ["key", "value", "output.dense"],
    "t5": ["k", "v", "wo"],
    "mt5": ["k", "v", "wi_1"],
}
TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING = {
    "gpt2": ["mlp.c_proj"],
    "opt": ["fc2"],
    "llama": ["down_proj"],
    "mistral": ["down_proj"],
    "bert": ["output.dense"],
    "t5": ["wo"],
    "mt5": [],
}
# VB-LoRA's own table (PEFT's, for the model types tinypeft has; it has no "mistral" entry)
TRANSFORMERS_MODELS_TO_VBLORA_TARGET_MODULES_MAPPING = {
    "t5": ["q", "k", "v", "o", "wi", "wo"],
    "mt5": ["q", "k", "v", "o", "wi_0", "wi_1", "wo"],
    "gpt2": ["c_attn"],
    "opt": ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"],
    "llama": ["q_proj", "v_proj"],
    "bert": ["query", "value"],
}
SEQ_CLS_HEAD_NAMES = ["score", "classifier"]
EMBEDDING_LAYER_NAMES = ["embed_tokens", "lm_head"]


class ModulesToSaveWrapper(nn.Module):
    """A fully trained copy of a module (e.g. a new classifier head) per adapter, beside the frozen original.

    Its state_dict keys are `original_module.*` and `modules_to_save.<adapter>.*`, as in PEFT; the adapter
    file stores the copy under the module's own path.
    """

    def __init__(self, module_to_save, adapter_name):
        super().__init__()
        self.original_module = module_to_save
        self.modules_to_save = nn.ModuleDict({})
        self.active_adapter = None
        self.disabled = False
        self.update(adapter_name)
        self.set_adapter(adapter_name)

    def update(self, adapter_name):
        self.modules_to_save[adapter_name] = copy.deepcopy(self.original_module)
        self.modules_to_save[adapter_name].requires_grad_(True)
        self.original_module.requires_grad_(False)

    def set_adapter(self, adapter_name):
        if adapter_name not in self.modules_to_save:
            return
        for name, module in self.modules_to_save.items():
            module.requires_grad_(name == adapter_name)
        self.active_adapter = adapter_name

    def delete_adapter(self, adapter_name):
        if adapter_name in self.modules_to_save:
            del self.modules_to_save[adapter_name]
        if self.active_adapter == adapter_name:
            self.active_adapter = next(iter(self.modules_to_save.keys()), None)

    def forward(self, *args, **kwargs):
        if self.disabled or self.active_adapter not in self.modules_to_save:
            return self.original_module(*args, **kwargs)
        return self.modules_to_save[self.active_adapter](*args, **kwargs)

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.original_module, name)  # .weight, .in_features ... of the wrapped module
