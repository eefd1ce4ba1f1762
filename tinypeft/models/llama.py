"""Llama (Touvron et al., 2023), with the module names of transformers' modeling_llama.

What sets it apart from GPT-2: RMSNorm instead of LayerNorm, no biases, a SwiGLU feed-forward
(down_proj(silu(gate_proj(x)) * up_proj(x))), rotary position embeddings (RoPE, Su et al.) applied to
queries and keys instead of learned positions added to the input, and grouped-query attention: only
num_key_value_heads key/value heads, each shared by num_attention_heads // num_key_value_heads query heads.

Key/value cache: past_key_values is a tuple with one (key, value) pair per layer, each
[B, num_key_value_heads, T_past, head_dim]; keys are stored already rotated, as transformers stores them.
Prefix tuning puts its virtual tokens here too; the attention mask then covers T_past + T positions.
"""
import math

import numpy as np

from .. import nn
from ..ops.shape import cat
from ..tensor import as_numpy
from .configuration_utils import PretrainedConfig
from .generation import GenerationMixin
from .activations import activation
from .masking import attention_mask_4d, default_position_ids, past_length
from .modeling_layers import (GenericForCausalLM, GenericForSequenceClassification, GradientCheckpointingLayer,
                              forward_layers)
from .modeling_utils import ModelOutput, PreTrainedModel, embed_inputs, check_output_options
from .sdpa_attention import sdpa_attention_forward


class LlamaConfig(PretrainedConfig):
    """RoPE settings live in `rope_parameters` {"rope_type", "rope_theta", ...} (transformers 5); configs
    written by transformers 4 use `rope_theta` and `rope_scaling` {"type" or "rope_type", "factor", ...},
    which are folded in here. `rope_theta` is kept beside it so transformers 4 can read our config.json."""

    model_type = "llama"
    defaults = dict(
        vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=None, hidden_act="silu", max_position_embeddings=2048,
        initializer_range=0.02, rms_norm_eps=1e-6, pad_token_id=None, bos_token_id=1, eos_token_id=2,
        pretraining_tp=1, tie_word_embeddings=False, rope_parameters=None, attention_bias=False,
        attention_dropout=0.0, mlp_bias=False, head_dim=None,
    )

    def __init__(self, **kwargs):
        rope_theta = kwargs.pop("rope_theta", None)
        rope_scaling = kwargs.pop("rope_scaling", None)
        super().__init__(**kwargs)
        rope = dict(rope_scaling or self.rope_parameters or {})
        rope.setdefault("rope_type", rope.pop("type", "default"))
        rope.setdefault("rope_theta", rope_theta if rope_theta is not None else 10000.0)
        if rope["rope_type"] == "llama3":
            rope.setdefault("original_max_position_embeddings", self.max_position_embeddings)
        self.rope_parameters = rope
        self.rope_theta = rope["rope_theta"]
        if self.head_dim is None:
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads


def rope_inverse_frequencies(config):
    """inv_freq [head_dim / 2] in float32 (as transformers computes it) and the cos/sin scaling factor.

    Pair i of a head's dims turns by angle position * inv_freq[i], inv_freq[i] = theta^(-2i / head_dim).
    """
    rope = config.rope_parameters
    kind, dim = rope["rope_type"], config.head_dim
    inv_freq = 1.0 / (rope["rope_theta"] ** (np.arange(0, dim, 2).astype(np.float32) / dim))  # [dim / 2]
    if kind == "default":
        return inv_freq, 1.0
    if kind == "linear":
        # position interpolation: positions / factor, folded into the frequencies
        return inv_freq / np.float32(rope["factor"]), 1.0
    if kind == "llama3":
        # Llama 3.1: long wavelengths slowed down by `factor`, short ones kept, a smooth blend in between
        factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
        old_len = rope["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv_freq
        scaled = np.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
        smooth = (old_len / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < old_len / high) & ~(wavelen > old_len / low)
        return np.where(medium, smoothed, scaled).astype(np.float32), 1.0
    raise NotImplementedError(
        f"rope_type {kind!r} is not supported by tinypeft's Llama; supported: 'default', 'linear', 'llama3'."
    )


class LlamaRotaryEmbedding(nn.Module):
    """cos and sin of every (position, frequency) angle. inv_freq is a plain array: not a parameter and
    not in the state_dict (transformers keeps it as a non-persistent buffer)."""

    def __init__(self, config):
        super().__init__()
        self.rope_type = config.rope_parameters["rope_type"]
        self.inv_freq, self.attention_scaling = rope_inverse_frequencies(config)

    def forward(self, x, position_ids):
        pos = as_numpy(position_ids)
        freqs = pos[..., None].astype(np.float32) * self.inv_freq  # [B, T, 1] * [hd/2] -> [B, T, hd/2]
        emb = np.concatenate([freqs, freqs], axis=-1)  # [B, T, hd]: dim j and j + hd/2 share an angle
        cos = (np.cos(emb) * self.attention_scaling).astype(x.dtype)
        sin = (np.sin(emb) * self.attention_scaling).astype(x.dtype)
        return x.xp.asarray(cos), x.xp.asarray(sin)


def rotate_half(x):
    """(x1, x2) -> (-x2, x1) on the two halves of the last dim: multiplying by sin then rotates each
    pair (x[j], x[j + hd/2]) in its plane (the GPT-NeoX layout, not interleaved pairs)."""
    half = x.shape[-1] // 2
    return cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    """q [B, H, T, hd], k [B, H_kv, T, hd], cos/sin [B, T, hd] -> rotated q, k."""
    cos, sin = cos[:, None], sin[:, None]  # [B, 1, T, hd]: the same angles for every head
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


class LlamaMLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.hidden_size = config.hidden_size
        self.intermediate_size = config.intermediate_size
        self.gate_proj = nn.Linear(self.hidden_size, self.intermediate_size, bias=config.mlp_bias)
        self.up_proj = nn.Linear(self.hidden_size, self.intermediate_size, bias=config.mlp_bias)
        self.down_proj = nn.Linear(self.intermediate_size, self.hidden_size, bias=config.mlp_bias)
        self.act_fn = activation(config.hidden_act)

    def forward(self, x):
        # SwiGLU: the gate decides, elementwise, how much of the up projection passes
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))  # [B, T, I] -> [B, T, D]


class LlamaAttention(nn.Module):
    def __init__(self, config, layer_idx=0):
        super().__init__()
        self.layer_idx = layer_idx
        self.head_dim = config.head_dim
        self.num_heads = config.num_attention_heads
        self.num_key_value_heads = config.num_key_value_heads
        self.num_key_value_groups = self.num_heads // self.num_key_value_heads
        self.scaling = self.head_dim ** -0.5
        self.attention_dropout = config.attention_dropout
        D, hd, bias = config.hidden_size, self.head_dim, config.attention_bias
        self.q_proj = nn.Linear(D, self.num_heads * hd, bias=bias)
        self.k_proj = nn.Linear(D, self.num_key_value_heads * hd, bias=bias)
        self.v_proj = nn.Linear(D, self.num_key_value_heads * hd, bias=bias)
        self.o_proj = nn.Linear(self.num_heads * hd, D, bias=bias)

    def _heads(self, x):  # [B, T, n * hd] -> [B, n, T, hd]
        B, T, _ = x.shape
        return x.view(B, T, -1, self.head_dim).transpose(1, 2)

    def forward(self, hidden_states, position_embeddings, mask=None, layer_past=None, use_cache=False):
        q = self._heads(self.q_proj(hidden_states))  # [B, H, T, hd]
        k = self._heads(self.k_proj(hidden_states))  # [B, H_kv, T, hd]
        v = self._heads(self.v_proj(hidden_states))  # [B, H_kv, T, hd]
        q, k = apply_rotary_pos_emb(q, k, *position_embeddings)
        if layer_past is not None:
            k = cat([layer_past[0], k], dim=-2)  # [B, H_kv, T_past + T, hd]
            v = cat([layer_past[1], v], dim=-2)
        present = (k, v) if use_cache else None
        p = self.attention_dropout if self.training else 0.0
        # enable_gqa: query head h reads key/value head h // num_key_value_groups, without copying K and V
        out = sdpa_attention_forward(q, k, v, mask, dropout=p, scaling=self.scaling, enable_gqa=True)  # [B, T, H * hd]
        return self.o_proj(out), present


class LlamaDecoderLayer(GradientCheckpointingLayer):
    def __init__(self, config, layer_idx=0):
        super().__init__()
        self.hidden_size = config.hidden_size
        self.self_attn = LlamaAttention(config, layer_idx)
        self.mlp = LlamaMLP(config)
        # RMSNorm takes the mean square in float32 even for float16 input (the op does it)
        self.input_layernorm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(self, x, position_embeddings, mask=None, layer_past=None, use_cache=False):
        h, present = self.self_attn(self.input_layernorm(x), position_embeddings, mask, layer_past, use_cache)
        x = x + h
        return x + self.mlp(self.post_attention_layernorm(x)), present


class LlamaPreTrainedModel(PreTrainedModel):
    config_class = LlamaConfig
    base_model_prefix = "model"
    # checkpoints saved by transformers < 4.31 still hold the (recomputed) rotary frequencies
    _keys_to_ignore_on_load_unexpected = [r"rotary_emb\.inv_freq"]


class LlamaModel(LlamaPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.padding_idx = config.pad_token_id
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, self.padding_idx)
        self.layers = nn.ModuleList([LlamaDecoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = LlamaRotaryEmbedding(config)

    def get_input_embeddings(self):
        return self.embed_tokens

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, use_cache=False,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        check_output_options(self, output_attentions, output_hidden_states, return_dict)
        inputs_embeds = embed_inputs(self.embed_tokens, input_ids, inputs_embeds)  # [B, T] -> [B, T, D]
        B, T = inputs_embeds.shape[:2]
        past_len = past_length(past_key_values)
        if position_ids is None:
            # as transformers: consecutive positions after the cache, whatever the padding
            position_ids = default_position_ids(past_len, T, B)
        mask = attention_mask_4d(attention_mask, B, T, past_len + T, causal=True)  # [B, 1, T, T_past + T]
        x = inputs_embeds
        position_embeddings = self.rotary_emb(x, position_ids)  # cos, sin [B, T, hd], shared by all layers
        x, presents = forward_layers(self.layers, x, position_embeddings, mask, past_key_values=past_key_values,
                                     use_cache=use_cache)
        return ModelOutput(last_hidden_state=self.norm(x), past_key_values=presents)


class LlamaForCausalLM(GenericForCausalLM, LlamaPreTrainedModel, GenerationMixin):
    def __init__(self, config):
        super().__init__(config)
        self.model = LlamaModel(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)


class LlamaForSequenceClassification(GenericForSequenceClassification, LlamaPreTrainedModel): ...
