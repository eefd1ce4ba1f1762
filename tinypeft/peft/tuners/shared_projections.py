"""What VeRA, PVeRA and RandLoRA share: frozen random matrices drawn once per adapter, sized for the largest target layer
(each layer slices its own part), kept once on the tuner as `base_model.<name>.<adapter>` (the keys PEFT saves,
listed in shared_state_names) and handed, as the same objects, to every layer, so the state dict lists them
under each layer's path as PEFT's does.
"""
from ... import nn
from ...models.gpt2 import Conv1D
from ...tensor import Tensor
from .tuners_utils import BaseTuner, check_target_module_exists, linear_fan_in_fan_out, linear_in_out
from .vera.layer import BufferDict


class SharedProjectionTuner(BaseTuner):
    shared_state_names = ()  # the tuner's BufferDicts of shared matrices, in the order the layer class takes them
    method_name = ""  # as PEFT's messages name the method
    linear_class = None  # the adapter layer for Linear / Conv1D: linear_class(target, *shared, fan_in_fan_out=...)

    def _check_new_adapter_config(self, config):
        super()._check_new_adapter_config(config)
        keys = {c.projection_prng_key for c in self.peft_config.values()}
        if len(keys) > 1:
            raise ValueError(f"{self.method_name} PRNG initialisation key must be the same for all adapters. Got "
                             f"{sorted(keys)}.")

    def _largest_target(self, config, model):
        """(out, in): the elementwise max of the target layers' sizes (also those a previous adapter wrapped)."""
        shapes = [linear_in_out(m.base_layer if isinstance(m, self.layer_class) else m)[::-1]
                  for key, m in model.named_modules()
                  if key and isinstance(m, (nn.Linear, Conv1D, self.layer_class))
                  and check_target_module_exists(config, key)]
        if not shapes:
            raise ValueError(f"No layers types compatible with {self.method_name} were found. Please check "
                             "`peft_config.target_modules`.")
        return max(s[0] for s in shapes), max(s[1] for s in shapes)

    def _set_shared(self, adapter_name, *arrays):
        """Store this adapter's shared matrices (arrays, in shared_state_names' order), creating the BufferDicts."""
        for name, array in zip(self.shared_state_names, arrays):
            if name not in self._modules:
                setattr(self, name, BufferDict())
            getattr(self, name)[adapter_name] = Tensor(array)

    def _new_layer(self, config, target, current_key):
        fan_in_fan_out = linear_fan_in_fan_out(config, target)
        if fan_in_fan_out is not None:
            shared = [getattr(self, name) for name in self.shared_state_names]
            return self.linear_class(target, *shared, fan_in_fan_out=fan_in_fan_out)
        raise ValueError(f"Target module {current_key} ({type(target).__name__}) is not supported. Currently, only "
                         "`torch.nn.Linear` and `Conv1D` are supported.")

