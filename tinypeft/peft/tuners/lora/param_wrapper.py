"""LoRA on a parameter rather than a layer (LoraConfig.target_parameters), as PEFT's ParamWrapper does it.

Some layers hold their weight as a bare nn.Parameter and use it in their own way (x @ W, an einsum over experts),
so there is no Linear to wrap. PEFT then adapts the parameter itself: the module that owns it is wrapped, and
while the module runs, the parameter reads as

    W + s B A          W [out, in] (any 2-D parameter: out = its first axis), A [r, in], B [out, r]

so whatever the module computes with W, it computes with the updated weight; the gradient reaches A and B
through add and matmul. Dropout cannot be placed (the input of W is the module's business), and PEFT refuses
lora_dropout, DoRA and lora_bias here; tinypeft does too. PEFT's 3-D (stacked experts) parameters and several
parameters of one module (nested wrappers) are not implemented.
"""
from .layer import Linear, LoraLayer


class ParamWrapper(Linear):
    """LoRA around the module that owns `parameter_name`; lora_A / lora_B as a Linear's."""

    def __init__(self, base_layer, parameter_name):
        if isinstance(base_layer, ParamWrapper):
            raise NotImplementedError("target_parameters naming two parameters of one module (PEFT nests its "
                                      "ParamWrappers) is not implemented by tinypeft.")
        LoraLayer.__init__(self, base_layer)
        self.parameter_name = parameter_name
        shape = getattr(base_layer, parameter_name).shape
        if len(shape) != 2:
            raise NotImplementedError(f"target_parameters: {parameter_name} has shape {tuple(shape)}; tinypeft "
                                      "adapts 2-D parameters only (PEFT's 3-D expert stacks are not implemented).")
        self.fan_in_fan_out = False
        self.out_features, self.in_features = shape

    def update_layer(self, adapter_name, r, lora_alpha, lora_dropout, init_lora_weights, use_rslora,
                     use_dora=False, lora_bias=False):
        for option, refused in (("lora_dropout != 0", lora_dropout), ("use_dora=True", use_dora),
                                ("lora_bias=True", lora_bias)):
            if refused:
                raise ValueError(f"lora.ParamWrapper does not work with {option}.")
        super().update_layer(adapter_name, r, lora_alpha, lora_dropout, init_lora_weights, use_rslora)

    def _param(self):
        return getattr(self.base_layer, self.parameter_name)

    def _base_weight(self):
        return self._param().data

    def _set_base_weight(self, W):
        self._param().data = W.astype(self._param().dtype)

    def forward(self, x, *args, **kwargs):
        adapters = self._adapters_to_run()
        if not adapters:
            return self.base_layer(x, *args, **kwargs)
        param = self._param()
        W = param
        for a in adapters:
            W = W + (self.lora_B[a].weight @ self.lora_A[a].weight) * self.scaling[a]  # [out, r] @ [r, in]
        registry = self.base_layer._parameters
        registry[self.parameter_name] = W  # the owner reads W + s B A for this call only
        try:
            return self.base_layer(x, *args, **kwargs)
        finally:
            registry[self.parameter_name] = param

    def extra_repr(self):
        return f"parameter_name={self.parameter_name!r}, " + super().extra_repr()
