"""AdaptedAttention: a Llama attention module plus, per adapter, adaption prompts read through a gate.

With the layer's input h [B, T, D], the adapter's prompt P [1, L, D] and gate g [1] (zero at init, so a new
adapter changes nothing):
    q = RoPE(h W_q^T)                    [B, H, T, hd]  (the queries the attention used)
    k_P = P W_k^T, v_P = P W_v^T         [1, H_kv, L, hd]  (no rotary: the prompt has no position)
    a = g * softmax(q k_P^T / sqrt(hd))  [B, H, T, L]  (its own softmax, no mask: every token sees the prompt)
    out = attention(h) + o_proj(a v_P)   [B, T, D]
As PEFT: the prompt goes through the frozen k_proj / v_proj / o_proj; query head h reads prompt head
h // (H / H_kv) under grouped-query attention. No new op: the backward is that of linear, matmul, softmax, mul.
"""
import math

import numpy as np

from .... import functional as F
from .... import nn
from ....creation import generator
from ....models.llama import rotate_half
from ..tuners_utils import BaseTunerLayer


class AdaptedAttention(nn.Module, BaseTunerLayer):
    adapter_layer_names = ("adaption_prompt", "adaption_gate")

    def __init__(self, model_type, model):
        super().__init__()
        self.model_type = model_type
        self.model = model  # the wrapped attention, under PEFT's name (`self_attn.model.q_proj`)
        self._active_adapter = ["default"]
        self.disable_adapters = False
        self.merged_adapters = []
        self.adaption_prompt = nn.ParameterDict({})
        self.adaption_gate = nn.ParameterDict({})

    @property
    def base_layer(self):
        return self.model

    def update_layer(self, adapter_name, adapter_len):
        hidden_size = self.model.q_proj.in_features
        # the official LLaMA-Adapter used an Embedding for the prompts: N(0, 1) values, as PEFT
        prompt = generator().standard_normal((1, adapter_len, hidden_size)).astype(np.float32)
        self.adaption_prompt[adapter_name] = nn.Parameter(prompt)  # [1, L, D]
        self.adaption_gate[adapter_name] = nn.Parameter(np.zeros(1, np.float32))  # zero-init gate

    def merge(self, safe_merge=False, adapter_names=None):
        raise NotImplementedError("Adaption prompts cannot be merged into the weights (PEFT cannot either); "
                                  "use unload() to remove them.")

    def forward(self, hidden_states, position_embeddings, mask=None, layer_past=None, use_cache=False):
        out, present = self.model(hidden_states, position_embeddings, mask, layer_past, use_cache)
        for adapter in self._adapters_to_run(self.adaption_prompt):
            out = out + self._adaption(adapter, hidden_states, position_embeddings)
        return out, present

    def _adaption(self, adapter, hidden_states, position_embeddings):
        attn = self.model
        B, T, _ = hidden_states.shape
        prompt = self.adaption_prompt[adapter]  # [1, L, D]
        L, hd, groups = prompt.shape[1], attn.head_dim, attn.num_key_value_groups
        q = attn._heads(attn.q_proj(hidden_states))  # [B, H, T, hd]
        cos, sin = (t[:, None] for t in position_embeddings)  # [B, 1, T, hd]
        q = q * cos + rotate_half(q) * sin

        def heads(x):  # [1, L, H_kv * hd] -> [1, H, L, hd], each prompt head repeated for its query group
            x = x.view(1, L, -1, hd).transpose(1, 2)  # [1, H_kv, L, hd]
            H_kv = x.shape[1]
            return x.unsqueeze(2).expand(1, H_kv, groups, L, hd).reshape(1, H_kv * groups, L, hd)

        k, v = heads(attn.k_proj(prompt)), heads(attn.v_proj(prompt))
        scores = (q @ k.transpose(2, 3)) / math.sqrt(hd)  # [B, H, T, L]
        scores = self.adaption_gate[adapter] * F.softmax(scores, dim=-1)
        adapted = (scores @ v).transpose(1, 2).reshape(B, T, -1)  # [B, H, T, hd] -> [B, T, H * hd]
        return attn.o_proj(adapted)  # [B, T, D]
