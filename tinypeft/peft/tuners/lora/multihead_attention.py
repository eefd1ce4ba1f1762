"""LoRA around nn.MultiheadAttention, as PEFT builds it.

The layer has no Linear for query/key/value: their projection is the packed parameter in_proj_weight [3E, E].
PEFT puts one LoRA pair on it (lora_A [r, E], lora_B [3E, r]) and wraps out_proj in a LoRA Linear (its own
lora_A [r, E], lora_B [E, r]); the attention then runs with both weights updated:

    y = MHA(x; W_in + s B A, W_out + s B_o A_o)

PEFT gets this by merging before the base forward and unmerging after it, so lora_dropout never applies here;
tinypeft passes the two sums to the base layer's _attention instead, which is the same function of A and B
(the gradient reaches them through matmul and add). merge / unmerge fold the deltas into both weights; DoRA is
refused as PEFT refuses it, and lora_bias (which PEFT would leave out of the merged in-projection) is not
implemented.
"""
from .layer import LoraLayer, Linear


class MultiheadAttention(Linear):
    """lora_A / lora_B on in_proj_weight, and base_layer.out_proj a LoRA Linear with the same adapters."""

    def __init__(self, base_layer):
        if not getattr(base_layer, "_qkv_same_embed_dim", True):
            raise ValueError("Only same embed for query/key/value is supported as of now for MultiheadAttention.")
        LoraLayer.__init__(self, base_layer)
        self.fan_in_fan_out = False
        self.in_features, self.out_features = base_layer.embed_dim, 3 * base_layer.embed_dim
        base_layer.out_proj = Linear(base_layer.out_proj)  # LoRA on both projections; no way to pick one

    def update_layer(self, adapter_name, r, lora_alpha, lora_dropout, init_lora_weights, use_rslora,
                     use_dora=False, lora_bias=False):
        if use_dora:
            raise ValueError("MultiheadAttention does not support DoRA (yet), please set use_dora to False")
        if lora_bias:
            raise NotImplementedError("lora_bias=True on a MultiheadAttention layer is not implemented by tinypeft.")
        for layer in (super(), self.base_layer.out_proj):
            layer.update_layer(adapter_name, r, lora_alpha, lora_dropout, init_lora_weights, use_rslora)

    def _base_weight(self):
        return self.base_layer.in_proj_weight.data

    def _set_base_weight(self, W):
        self.base_layer.in_proj_weight.data = W.astype(self.base_layer.in_proj_weight.dtype)

    def merge(self, safe_merge=False, adapter_names=None):
        super().merge(safe_merge, adapter_names)
        self.base_layer.out_proj.merge(safe_merge, adapter_names)

    def unmerge(self):
        super().unmerge()
        self.base_layer.out_proj.unmerge()

    def unload_and_optionally_merge_module(self, merge, safe_merge, adapter_names):
        """The plain nn.MultiheadAttention back, its out_proj unwrapped too (PEFT's name for this step)."""
        if merge:
            self.merge(safe_merge, adapter_names)
        base = self.base_layer
        base.out_proj = base.out_proj.get_base_layer()
        return base

    def forward(self, query, key, value, *args, **kwargs):
        adapters = self._adapters_to_run()
        base = self.base_layer
        if not adapters:
            return base(query, key, value, *args, **kwargs)
        out_proj = base.out_proj
        if out_proj.active_adapters != self.active_adapters or out_proj.merged:
            raise ValueError("The out_proj layer of MultiheadAttention has merged layers but MultiheadAttention "
                             "itself doesn't; please ensure that either both or none have merged layers")
        w_in, w_out = base.in_proj_weight, out_proj.weight  # [3E, E], [E, E]
        for a in adapters:
            w_in = w_in + (self.lora_B[a].weight @ self.lora_A[a].weight) * self.scaling[a]
            w_out = w_out + (out_proj.lora_B[a].weight @ out_proj.lora_A[a].weight) * out_proj.scaling[a]
        return base._attention(query, key, value, w_in, w_out, *args, **kwargs)
