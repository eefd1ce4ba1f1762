"""AdaptionPromptModel: wraps the top `adapter_layers` attention modules in AdaptedAttention.

PEFT keeps only the active adapter's modules in the model and swaps them on set_adapter, so its state-dict
keys carry no adapter name (`...layers.1.self_attn.adaption_prompt`). Here every adapter lives in the one
wrapper, in ParameterDicts (`...self_attn.adaption_prompt.default`), as for the other tuners; the file keys
drop the name and are PEFT's. As in PEFT, one adapter runs at a time.
"""
from ..tuners_utils import BaseTuner
from .config import prepare_config
from .layer import AdaptedAttention, AdaptedAttentionGPT, _BaseAdaptedAttention


class AdaptionPromptModel(BaseTuner):
    prefix = "adaption_"
    layer_class = _BaseAdaptedAttention

    def inject_adapter(self, model, adapter_name):
        config = prepare_config(self.peft_config[adapter_name], model)
        # the attention modules in layer order (PEFT assumes the same: an ordered container of layers)
        keys = [k for k, _ in model.named_modules() if k.endswith(f".{config.target_modules}")]
        if len(keys) < config.adapter_layers:
            raise ValueError(f"Config specifies more adapter layers '{config.adapter_layers}' than the model has "
                             f"'{len(keys)}'.")
        model_type = model.config.model_type
        wrapper = AdaptedAttentionGPT if model_type == "gpt2" else AdaptedAttention
        for key in keys[-config.adapter_layers:]:
            parent_name, _, name = key.rpartition(".")
            parent = model.get_submodule(parent_name)
            self._add_to_layer(getattr(parent, name), name, parent,
                               lambda target: wrapper(model_type, target, model.config.hidden_size),
                               lambda layer: layer.update_layer(adapter_name, config.adapter_len))
        self._mark_only_adapters_as_trainable(model)
        if config.inference_mode:
            for n, p in model.named_parameters():
                if n.endswith(f".{adapter_name}") and self.prefix in n:
                    p.requires_grad = False

    def set_adapter(self, adapter_name):
        if not isinstance(adapter_name, str):
            raise ValueError("Adaption prompt runs one adapter at a time; pass one name.")
        super().set_adapter(adapter_name)
