"""OPT (Zhang et al., 2022), with the module names of transformers' modeling_opt.

A GPT-2-like decoder with nn.Linear projections (weight [out, in]) and separate q/k/v_proj. Two quirks
come from fairseq checkpoints:
- learned positions are offset by 2: position p reads row p + 2 of embed_positions, and positions are
  counted from the attention mask (cumsum), so left padding does not shift them;
- opt-350m normalises after each residual (do_layer_norm_before=False) and works at width 1024 while its
  word embeddings are 512 wide: project_in / project_out map between the two (word_embed_proj_dim).

Key/value cache: past_key_values is a tuple with one (key, value) pair per layer, each [B, H, T_past, hd],
the keys and values of every earlier position (prefix tuning puts its virtual tokens here too). The
attention mask then covers T_past + T positions.
"""
import numpy as np

from .. import nn
from ..ops.shape import cat
from ..tensor import as_array
from .configuration_utils import PretrainedConfig
from .generation import GenerationMixin
from .activations import activation
from .heads import sequence_classification_output
from .masking import attention_mask_4d, past_length
from .modeling_layers import GenericForCausalLM, GradientCheckpointingLayer, forward_layers
from .modeling_utils import ModelOutput, PreTrainedModel, embed_inputs, check_output_options
from .sdpa_attention import sdpa_attention_forward


class OPTConfig(PretrainedConfig):
    model_type = "opt"
    defaults = dict(
        vocab_size=50272, hidden_size=768, num_hidden_layers=12, ffn_dim=3072, max_position_embeddings=2048,
        do_layer_norm_before=True, _remove_final_layer_norm=False, word_embed_proj_dim=None, dropout=0.1,
        attention_dropout=0.0, num_attention_heads=12, activation_function="relu", layerdrop=0.0,
        init_std=0.02, pad_token_id=1, bos_token_id=2, eos_token_id=2, enable_bias=True,
        layer_norm_elementwise_affine=True, tie_word_embeddings=True,
    )
    attribute_map = {"initializer_range": "init_std"}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.word_embed_proj_dim is None:
            self.word_embed_proj_dim = self.hidden_size


class OPTLearnedPositionalEmbedding(nn.Embedding):
    """Learned positions stored with an offset of 2 (fairseq reserved rows 0 and 1): [max_pos + 2, D]."""

    def __init__(self, num_embeddings, embedding_dim):
        self.offset = 2
        super().__init__(num_embeddings + self.offset, embedding_dim)

    def forward(self, attention_mask, past_key_values_length=0, position_ids=None):
        if position_ids is None:
            # real tokens count 0, 1, 2, ... from the first unmasked one; pads get -1 (row 1, never used)
            m = as_array(attention_mask).astype(np.int64)
            position_ids = (np.cumsum(m, axis=1) * m - 1)[:, past_key_values_length:]
        position_ids = as_array(position_ids)
        return super().forward(position_ids + self.offset)  # [B, T] -> [B, T, D]


class OPTAttention(nn.Module):
    def __init__(self, config, layer_idx=0):
        super().__init__()
        self.embed_dim = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = self.embed_dim // self.num_heads
        if self.head_dim * self.num_heads != self.embed_dim:
            raise ValueError(f"hidden_size {self.embed_dim} is not divisible by num_attention_heads {self.num_heads}.")
        self.dropout = config.attention_dropout
        self.scaling = self.head_dim ** -0.5
        self.layer_idx = layer_idx
        bias = config.enable_bias
        self.k_proj = nn.Linear(self.embed_dim, self.embed_dim, bias=bias)
        self.v_proj = nn.Linear(self.embed_dim, self.embed_dim, bias=bias)
        self.q_proj = nn.Linear(self.embed_dim, self.embed_dim, bias=bias)
        self.out_proj = nn.Linear(self.embed_dim, self.embed_dim, bias=bias)

    def _heads(self, x):  # [B, T, D] -> [B, H, T, hd]
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, hidden_states, mask=None, layer_past=None, use_cache=False):
        # transformers scales q before the product (not the scores), and so do we: it rounds differently
        q = self._heads(self.q_proj(hidden_states) * self.scaling)
        k = self._heads(self.k_proj(hidden_states))
        v = self._heads(self.v_proj(hidden_states))
        if layer_past is not None:
            k = cat([layer_past[0], k], dim=-2)  # [B, H, T_past + T, hd]
            v = cat([layer_past[1], v], dim=-2)
        present = (k, v) if use_cache else None
        p = self.dropout if self.training else 0.0
        out = sdpa_attention_forward(q, k, v, mask, dropout=p, scaling=1.0)  # [B, T, D] (q was scaled already)
        return self.out_proj(out), present


class OPTDecoderLayer(GradientCheckpointingLayer):
    def __init__(self, config, layer_idx=0):
        super().__init__()
        self.embed_dim = config.hidden_size
        self.self_attn = OPTAttention(config, layer_idx)
        self.do_layer_norm_before = config.do_layer_norm_before
        self.dropout = nn.Dropout(config.dropout)
        self.activation_fn = activation(config.activation_function)
        affine = config.layer_norm_elementwise_affine
        self.self_attn_layer_norm = nn.LayerNorm(self.embed_dim, elementwise_affine=affine)
        self.fc1 = nn.Linear(self.embed_dim, config.ffn_dim, bias=config.enable_bias)
        self.fc2 = nn.Linear(config.ffn_dim, self.embed_dim, bias=config.enable_bias)
        self.final_layer_norm = nn.LayerNorm(self.embed_dim, elementwise_affine=affine)

    def forward(self, x, mask=None, layer_past=None, use_cache=False):
        pre = self.do_layer_norm_before  # 125m, 1.3b, ...: norm before; 350m: norm after the residual
        h = self.self_attn_layer_norm(x) if pre else x
        h, present = self.self_attn(h, mask, layer_past, use_cache)
        x = x + self.dropout(h)
        if not pre:
            x = self.self_attn_layer_norm(x)
        h = self.final_layer_norm(x) if pre else x
        h = self.fc2(self.activation_fn(self.fc1(h)))  # [B, T, D] -> [B, T, ffn_dim] -> [B, T, D]
        x = x + self.dropout(h)
        if not pre:
            x = self.final_layer_norm(x)
        return x, present


class OPTPreTrainedModel(PreTrainedModel):
    config_class = OPTConfig
    base_model_prefix = "model"


class OPTDecoder(OPTPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.padding_idx = config.pad_token_id
        self.embed_tokens = nn.Embedding(config.vocab_size, config.word_embed_proj_dim, self.padding_idx)
        self.embed_positions = OPTLearnedPositionalEmbedding(config.max_position_embeddings, config.hidden_size)
        narrow = config.word_embed_proj_dim != config.hidden_size
        self.project_out = nn.Linear(config.hidden_size, config.word_embed_proj_dim, bias=False) if narrow else None
        self.project_in = nn.Linear(config.word_embed_proj_dim, config.hidden_size, bias=False) if narrow else None
        # _remove_final_layer_norm only keeps checkpoints fine-tuned before transformers 4.20.1 loading
        if config.do_layer_norm_before and not config._remove_final_layer_norm:
            self.final_layer_norm = nn.LayerNorm(config.hidden_size,
                                                 elementwise_affine=config.layer_norm_elementwise_affine)
        else:
            self.final_layer_norm = None
        self.layers = nn.ModuleList([OPTDecoderLayer(config, i) for i in range(config.num_hidden_layers)])

    def get_input_embeddings(self):
        return self.embed_tokens

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, use_cache=False,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        check_output_options(self, output_attentions, output_hidden_states, return_dict)
        inputs_embeds = embed_inputs(self.embed_tokens, input_ids, inputs_embeds)  # [B, T, word_embed_proj_dim]
        B, T = inputs_embeds.shape[:2]
        past_len = past_length(past_key_values)
        # positions need a dense mask even when the caller gave none; attention does not
        position_mask = np.ones((B, past_len + T), np.int64) if attention_mask is None else attention_mask
        pos_embeds = self.embed_positions(position_mask, past_len, position_ids)  # [B, T, D]
        if self.project_in is not None:
            inputs_embeds = self.project_in(inputs_embeds)  # [B, T, word_embed_proj_dim] -> [B, T, D]
        x = inputs_embeds + pos_embeds
        mask = attention_mask_4d(attention_mask, B, T, past_len + T, causal=True)  # [B, 1, T, T_past + T]
        x, presents = forward_layers(self.layers, x, mask, past_key_values=past_key_values, use_cache=use_cache,
                                     layerdrop=self.config.layerdrop, training=self.training)
        if self.final_layer_norm is not None:
            x = self.final_layer_norm(x)
        if self.project_out is not None:
            x = self.project_out(x)  # [B, T, D] -> [B, T, word_embed_proj_dim]
        return ModelOutput(last_hidden_state=x, past_key_values=presents)


class OPTModel(OPTPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.decoder = OPTDecoder(config)

    def get_input_embeddings(self):
        return self.decoder.embed_tokens

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        return self.decoder(input_ids, attention_mask=attention_mask, **kwargs)


class OPTForCausalLM(GenericForCausalLM, OPTPreTrainedModel, GenerationMixin):
    def __init__(self, config):
        super().__init__(config)
        self.model = OPTModel(config)
        # tied to embed_tokens (tie_word_embeddings=True): the checkpoint stores the matrix once; its input is
        # the decoder's output after project_out, [B, T, word_embed_proj_dim]
        self.lm_head = nn.Linear(config.word_embed_proj_dim, config.vocab_size, bias=False)


class OPTForSequenceClassification(OPTPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = OPTModel(config)
        self.score = nn.Linear(config.word_embed_proj_dim, config.num_labels, bias=False)

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        out = self.model(input_ids, attention_mask=attention_mask, **kwargs)
        logits = self.score(out.last_hidden_state)  # [B, T, num_labels]
        return sequence_classification_output(self.config, logits, input_ids, labels, pool_last_token=True)
