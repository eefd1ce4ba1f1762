"""VBLoRAModel: one trained vector bank per adapter (`base_model.vblora_vector_bank.<adapter>`, shared by every
layer and saved once, as PEFT saves it) and VB-LoRA layers on the targets."""
import numpy as np

from .... import nn
from ....creation import generator
from ...utils.other import TRANSFORMERS_MODELS_TO_VBLORA_TARGET_MODULES_MAPPING
from ..tuners_utils import BaseTuner, new_linear_layer
from .layer import Linear, VBLoRALayer


class VBLoRAModel(BaseTuner):
    prefix = "vblora_"
    layer_class = VBLoRALayer
    default_targets = TRANSFORMERS_MODELS_TO_VBLORA_TARGET_MODULES_MAPPING
    shared_state_names = ("vblora_vector_bank",)

    def inject_adapter(self, model, adapter_name):
        config = self.peft_config[adapter_name]
        bound = config.init_vector_bank_bound
        bank = generator().uniform(-bound, bound, (config.num_vectors, config.vector_length))  # [N, L]
        self._shared_state(nn.ParameterDict)[adapter_name] = nn.Parameter(bank.astype(np.float32))
        super().inject_adapter(model, adapter_name)

    def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
        self._add_to_layer(target, target_name, parent,
                           lambda t: new_linear_layer(lambda b, fan_in_fan_out: Linear(
                               b, self.vblora_vector_bank, fan_in_fan_out), t, config),
                           lambda layer: layer.update_layer(adapter_name, config))

    def get_nb_savable_parameters(self, adapter="default"):
        """(VB-LoRA parameters the file holds, other trained parameters saved beside them), as PEFT counts them."""
        logits = bank = other = 0
        for name, p in self.named_parameters():
            if "vblora_logits" in name:
                logits += p.numel()
            elif "vblora_vector_bank" in name:
                bank += p.numel()
            elif p.requires_grad:
                other += p.numel()
        return bank + logits, other

    def print_savable_parameters(self):
        vblora, other = self.get_nb_savable_parameters()
        print(f"VB-LoRA params to-be-saved (float32-equivalent): {vblora:,d} "
              f"|| total params to-be-saved: {(vblora + other):,d}")
