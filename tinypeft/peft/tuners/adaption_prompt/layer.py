"""AdaptedAttention: an attention module plus, per adapter, adaption prompts read through a gate.

With the layer's input h [B, T, D], the adapter's prompt P [1, L, D] and gate g [1] (zero at init, so a new
adapter changes nothing), for Llama (AdaptedAttention):
    q = RoPE(h W_q^T)                    [B, H, T, hd]  (the queries the attention used)
    k_P = P W_k^T, v_P = P W_v^T         [1, H_kv, L, hd]  (no rotary: the prompt has no position)
    a = g * softmax(q k_P^T / sqrt(hd))  [B, H, T, L]  (its own softmax, no mask: every token sees the prompt)
    out = attention(h) + o_proj(a v_P)   [B, T, D]
Query head h reads prompt head h // (H / H_kv) under grouped-query attention. For GPT-2
(AdaptedAttentionGPT) q, k_P and v_P come from c_attn, and a v_P is added as it is, without c_proj: PEFT's
numerics, kept so that PEFT's adapters give PEFT's outputs. The prompt goes through the frozen projections.
No new op: the backward is that of linear, matmul, softmax and mul.
"""
import math

import numpy as np

from .... import functional as F
from .... import nn
from ....creation import generator
from ....models.llama import rotate_half
from ..tuners_utils import BaseTunerLayer


class _BaseAdaptedAttention(nn.Module, BaseTunerLayer):
    adapter_layer_names = ("adaption_prompt", "adaption_gate")

    def __init__(self, model_type, model, hidden_size):
        super().__init__()
        self.model_type = model_type
        self.model = model  # the wrapped attention, under PEFT's name (`self_attn.model.q_proj`)
        self.hidden_size = hidden_size
        self._active_adapter = ["default"]
        self.disable_adapters = False
        self.merged_adapters = []
        self.adaption_prompt = nn.ParameterDict({})
        self.adaption_gate = nn.ParameterDict({})

    @property
    def base_layer(self):
        return self.model

    def update_layer(self, adapter_name, adapter_len):
        # the official LLaMA-Adapter used an Embedding for the prompts: N(0, 1) values, as PEFT
        prompt = generator().standard_normal((1, adapter_len, self.hidden_size)).astype(np.float32)
        self.adaption_prompt[adapter_name] = nn.Parameter(prompt)  # [1, L, D]
        self.adaption_gate[adapter_name] = nn.Parameter(np.zeros(1, np.float32))  # zero-init gate

    def merge(self, safe_merge=False, adapter_names=None):
        raise NotImplementedError("Adaption prompts cannot be merged into the weights (PEFT cannot either); "
                                  "use unload() to remove them.")

    def _gated_attention(self, adapter, q, k, v):
        """q [B, H, T, hd], k and v [1, H, L, hd] -> (g * softmax(q k^T / sqrt(hd))) v as [B, T, H * hd]."""
        B, _, T, hd = q.shape
        scores = (q @ k.transpose(2, 3)) / math.sqrt(hd)  # [B, H, T, L]
        scores = self.adaption_gate[adapter] * F.softmax(scores, dim=-1)
        return (scores @ v).transpose(1, 2).reshape(B, T, -1)  # [B, H, T, hd] -> [B, T, H * hd]


def _prompt_heads(x, hd, groups=1):
    """[1, L, H_kv * hd] -> [1, H_kv * groups, L, hd]: each prompt head repeated for its group of query heads."""
    L = x.shape[1]
    x = x.view(1, L, -1, hd).transpose(1, 2)  # [1, H_kv, L, hd]
    H_kv = x.shape[1]
    return x.unsqueeze(2).expand(1, H_kv, groups, L, hd).reshape(1, H_kv * groups, L, hd)


class AdaptedAttention(_BaseAdaptedAttention):
    """Around LlamaAttention."""

    def forward(self, hidden_states, position_embeddings, mask=None, layer_past=None, use_cache=False):
        out, present = self.model(hidden_states, position_embeddings, mask, layer_past, use_cache)
        for adapter in self._adapters_to_run(self.adaption_prompt):
            out = out + self._adaption(adapter, hidden_states, position_embeddings)
        return out, present

    def _adaption(self, adapter, hidden_states, position_embeddings):
        attn, prompt = self.model, self.adaption_prompt[adapter]  # prompt [1, L, D]
        hd, groups = attn.head_dim, attn.num_key_value_groups
        q = attn._heads(attn.q_proj(hidden_states))  # [B, H, T, hd]
        cos, sin = (t[:, None] for t in position_embeddings)  # [B, 1, T, hd]
        q = q * cos + rotate_half(q) * sin
        k = _prompt_heads(attn.k_proj(prompt), hd, groups)  # [1, H, L, hd]
        v = _prompt_heads(attn.v_proj(prompt), hd, groups)
        return attn.o_proj(self._gated_attention(adapter, q, k, v))  # [B, T, D]


class AdaptedAttentionGPT(_BaseAdaptedAttention):
    """Around GPT2Attention."""

    def forward(self, hidden_states, mask=None, layer_past=None, use_cache=False):
        out, present = self.model(hidden_states, mask, layer_past, use_cache)
        for adapter in self._adapters_to_run(self.adaption_prompt):
            out = out + self._adaption(adapter, hidden_states)
        return out, present

    def _adaption(self, adapter, hidden_states):
        attn, D = self.model, self.model.embed_dim
        q = attn._heads(attn.c_attn(hidden_states)[..., :D])  # [B, T, 3D] -> [B, H, T, hd]
        _, k, v = attn.c_attn(self.adaption_prompt[adapter]).split(D, dim=2)  # 3 x [1, L, D]
        return self._gated_attention(adapter, q, _prompt_heads(k, attn.head_dim), _prompt_heads(v, attn.head_dim))
