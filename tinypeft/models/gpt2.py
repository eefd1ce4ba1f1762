"""GPT-2 (Radford et al., 2019), with the module names of transformers' modeling_gpt2.

GPT-2's projections are Conv1D: a linear layer whose weight is stored [in, out] (y = x W + b), the
transpose of nn.Linear's [out, in]. Checkpoints keep that layout, so we do too; PEFT's LoRA knows it as
fan_in_fan_out=True.
"""
import math

from .. import nn
from ..ops.linear import conv1d_linear
from ..ops.shape import cat
from .configuration_utils import PretrainedConfig
from .generation import GenerationMixin
from .masking import attention_mask_4d, default_position_ids, past_length
from .modeling_layers import (GenericForCausalLM, GenericForSequenceClassification, GradientCheckpointingLayer,
                              forward_layers)
from .modeling_utils import ModelOutput, PreTrainedModel, check_output_options
from .activations import activation
from .sdpa_attention import sdpa_attention_forward


class GPT2Config(PretrainedConfig):
    model_type = "gpt2"
    defaults = dict(
        vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12, n_inner=None,
        activation_function="gelu_new", resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1,
        layer_norm_epsilon=1e-5, initializer_range=0.02, scale_attn_weights=True,
        scale_attn_by_inverse_layer_idx=False, reorder_and_upcast_attn=False,
        bos_token_id=50256, eos_token_id=50256, summary_first_dropout=0.1,
    )
    attribute_map = {
        "hidden_size": "n_embd", "max_position_embeddings": "n_positions",
        "num_attention_heads": "n_head", "num_hidden_layers": "n_layer",
    }


class Conv1D(nn.Module):
    """y = x @ weight + bias with weight [nx, nf] = [in, out] (transformers' pytorch_utils.Conv1D)."""

    def __init__(self, nf, nx):
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(nn.init.empty(nx, nf))
        self.bias = nn.Parameter(nn.init.empty(nf))

    def forward(self, x):
        return conv1d_linear(x, self.weight, self.bias)  # [..., nx] @ [nx, nf] + [nf] -> [..., nf]


class GPT2Attention(nn.Module):
    def __init__(self, config, layer_idx=0):
        super().__init__()
        self.embed_dim = config.n_embd
        self.num_heads = config.n_head
        self.head_dim = self.embed_dim // self.num_heads
        self.scale = (1 / math.sqrt(self.head_dim)) if config.scale_attn_weights else 1.0
        if config.scale_attn_by_inverse_layer_idx:
            self.scale /= layer_idx + 1
        self.c_attn = Conv1D(3 * self.embed_dim, self.embed_dim)
        self.c_proj = Conv1D(self.embed_dim, self.embed_dim)
        self.attn_dropout = nn.Dropout(config.attn_pdrop)
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def _heads(self, x):  # [B, T, D] -> [B, H, T, hd]
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, hidden_states, mask=None, layer_past=None, use_cache=False):
        q, k, v = self.c_attn(hidden_states).split(self.embed_dim, dim=2)  # 3 x [B, T, D]
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        if layer_past is not None:
            k = cat([layer_past[0], k], dim=-2)
            v = cat([layer_past[1], v], dim=-2)
        present = (k, v) if use_cache else None
        p = self.attn_dropout.p if self.training else 0.0
        out = sdpa_attention_forward(q, k, v, mask, dropout=p, scaling=self.scale)  # [B, T, D]
        return self.resid_dropout(self.c_proj(out)), present


class GPT2MLP(nn.Module):
    def __init__(self, intermediate_size, config):
        super().__init__()
        self.c_fc = Conv1D(intermediate_size, config.n_embd)
        self.c_proj = Conv1D(config.n_embd, intermediate_size)
        self.act = activation(config.activation_function)
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x):
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class GPT2Block(GradientCheckpointingLayer):
    def __init__(self, config, layer_idx=0):
        super().__init__()
        inner = config.n_inner if config.n_inner is not None else 4 * config.n_embd
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = GPT2Attention(config, layer_idx)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = GPT2MLP(inner, config)

    def forward(self, x, mask=None, layer_past=None, use_cache=False):
        a, present = self.attn(self.ln_1(x), mask, layer_past, use_cache)
        x = x + a
        return x + self.mlp(self.ln_2(x)), present


class GPT2PreTrainedModel(PreTrainedModel):
    config_class = GPT2Config
    base_model_prefix = "transformer"
    _keys_to_ignore_on_load_unexpected = [r"attn\.masked_bias", r"attn\.bias$"]

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, Conv1D):
            nn.init.normal_(module.weight, std=self.config.initializer_range)
            nn.init.zeros_(module.bias)


class GPT2Model(GPT2PreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.embed_dim = config.n_embd
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([GPT2Block(config, i) for i in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)

    def get_input_embeddings(self):
        return self.wte

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, token_type_ids=None, use_cache=False,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        check_output_options(self, output_attentions, output_hidden_states, return_dict)
        if inputs_embeds is None:
            inputs_embeds = self.wte(input_ids)  # [B, T] -> [B, T, D]
        B, T = inputs_embeds.shape[:2]
        past_len = past_length(past_key_values)
        if position_ids is None:
            position_ids = default_position_ids(past_len, T, B)
        x = inputs_embeds + self.wpe(position_ids)
        if token_type_ids is not None:
            x = x + self.wte(token_type_ids)
        x = self.drop(x)
        mask = attention_mask_4d(attention_mask, B, T, past_len + T, causal=True)
        x, presents = forward_layers(self.h, x, mask, past_key_values=past_key_values, use_cache=use_cache)
        return ModelOutput(last_hidden_state=self.ln_f(x), past_key_values=presents)


class GPT2LMHeadModel(GenericForCausalLM, GPT2PreTrainedModel, GenerationMixin):
    def __init__(self, config):
        super().__init__(config)
        self.transformer = GPT2Model(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)


class GPT2ForSequenceClassification(GenericForSequenceClassification, GPT2PreTrainedModel): ...
