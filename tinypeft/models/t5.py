"""T5 (Raffel et al., 2020) and mT5 (Xue et al., 2021), with the module names of transformers' modeling_t5.

An encoder-decoder transformer with three habits of its own:
- no absolute positions: each self-attention adds a learned bias per (head, relative-distance bucket) to its
  scores. Only the first block owns the table (`relative_attention_bias`); the other blocks reuse its bias.
- no 1/sqrt(d_kv) on the scores (the initialisation of q absorbs it), and T5LayerNorm = RMS norm, no bias.
- the LM head shares the embedding matrix (T5), and the decoder output is then scaled by d_model**-0.5;
  T5 v1.1 and mT5 use an untied head and no rescale.
The decoder's key/value cache is a tuple per block of (self_k, self_v, cross_k, cross_v), each [B, H, T, d_kv];
the cross-attention keys and values depend only on the encoder output, so they are computed once.
"""
import math

import numpy as np

from .. import functional as F
from .. import nn
from ..ops.shape import cat
from ..tensor import as_numpy
from .configuration_utils import PretrainedConfig
from .generation import GenerationMixin
from .activations import activation
from .masking import attention_mask_4d, past_length
from .modeling_layers import GradientCheckpointingLayer, forward_layers
from .modeling_utils import ModelOutput, PreTrainedModel, check_output_options, encoder_decoder_output
from .sdpa_attention import sdpa_attention_forward


class T5Config(PretrainedConfig):
    model_type = "t5"
    defaults = dict(
        vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_decoder_layers=None, num_heads=8,
        relative_attention_num_buckets=32, relative_attention_max_distance=128, dropout_rate=0.1,
        layer_norm_epsilon=1e-6, initializer_factor=1.0, feed_forward_proj="relu", is_encoder_decoder=True,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, classifier_dropout=0.0, is_decoder=False,
        tie_word_embeddings=True,
    )
    attribute_map = {
        "hidden_size": "d_model", "num_attention_heads": "num_heads", "num_hidden_layers": "num_layers",
        "head_dim": "d_kv",
    }

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.num_decoder_layers is None:
            self.num_decoder_layers = self.num_layers
        act = self.feed_forward_proj.split("-")
        if len(act) > 2 or (len(act) == 2 and act[0] != "gated"):
            raise ValueError(f"feed_forward_proj must be 'ACT' or 'gated-ACT' (e.g. 'relu', 'gated-gelu'), "
                             f"got {self.feed_forward_proj!r}.")
        self.is_gated_act = act[0] == "gated"
        # "gated-gelu" has always meant the tanh approximation (T5 v1.1 and mT5 were trained with it)
        self.dense_act_fn = "gelu_new" if self.feed_forward_proj == "gated-gelu" else act[-1]
        # transformers >= 5 writes the rescale flag out; older config.json files imply it by tying
        if kwargs.get("scale_decoder_outputs") is None:
            self.scale_decoder_outputs = bool(self.tie_word_embeddings)


class MT5Config(T5Config):
    model_type = "mt5"
    defaults = dict(
        T5Config.defaults, vocab_size=250112, d_ff=1024, num_layers=8, num_heads=6,
        feed_forward_proj="gated-gelu", tie_word_embeddings=False,
    )


def relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    """Map key_pos - query_pos to a bucket in [0, num_buckets), as Mesh TensorFlow does.

    Half the buckets hold exact distances 0 .. max_exact-1; the other half grow logarithmically up to
    max_distance, beyond which everything shares the last bucket. Bidirectional attention spends half
    of the buckets on keys after the query. The float32 arithmetic matches transformers' bucket edges.
    """
    buckets = np.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets += (relative_position > 0).astype(np.int64) * num_buckets
        n = np.abs(relative_position)
    else:
        n = -np.minimum(relative_position, 0)  # a causal query only sees keys at or before it
    max_exact = num_buckets // 2
    is_small = n < max_exact
    with np.errstate(divide="ignore"):  # log(0) in the entries is_small takes over
        scaled = (np.log(n.astype(np.float32) / np.float32(max_exact))
                  / np.float32(math.log(max_distance / max_exact)) * np.float32(num_buckets - max_exact))
    if_large = max_exact + np.trunc(np.where(is_small, 0, scaled)).astype(np.int64)
    if_large = np.minimum(if_large, num_buckets - 1)
    return buckets + np.where(is_small, n, if_large)


def additive_mask(allowed, dtype=np.float32):
    """Boolean [B, 1, q, k] -> 0 where allowed, the dtype's minimum elsewhere (transformers' eager mask)."""
    if allowed is None:
        return None
    return np.where(allowed, 0.0, np.finfo(dtype).min).astype(dtype)


class T5LayerNorm(nn.Module):
    """weight * x / sqrt(mean(x^2) + eps): no mean subtracted, no bias; the mean square in float32."""

    def __init__(self, hidden_size, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(nn.init.empty(hidden_size))
        self.variance_epsilon = eps

    def forward(self, x):
        return F.rms_norm(x, (x.shape[-1],), self.weight, eps=self.variance_epsilon)


class T5DenseActDense(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.wi = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout_rate)
        self.act = activation(config.dense_act_fn)

    def forward(self, x):
        return self.wo(self.dropout(self.act(self.wi(x))))  # [B, T, D] -> [B, T, d_ff] -> [B, T, D]


class T5DenseGatedActDense(nn.Module):
    """GLU variant (Shazeer, 2020): act(x wi_0) gates the linear branch x wi_1."""

    def __init__(self, config):
        super().__init__()
        self.wi_0 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wi_1 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout_rate)
        self.act = activation(config.dense_act_fn)

    def forward(self, x):
        h = self.act(self.wi_0(x)) * self.wi_1(x)  # [B, T, d_ff]
        return self.wo(self.dropout(h))


class T5LayerFF(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.DenseReluDense = T5DenseGatedActDense(config) if config.is_gated_act else T5DenseActDense(config)
        self.layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, x):
        return x + self.dropout(self.DenseReluDense(self.layer_norm(x)))


class T5Attention(nn.Module):
    def __init__(self, config, has_relative_attention_bias=False, is_decoder=False):
        super().__init__()
        self.is_decoder = is_decoder
        self.has_relative_attention_bias = has_relative_attention_bias
        self.relative_attention_num_buckets = config.relative_attention_num_buckets
        self.relative_attention_max_distance = config.relative_attention_max_distance
        self.n_heads = config.num_heads
        self.key_value_proj_dim = config.d_kv
        self.inner_dim = self.n_heads * self.key_value_proj_dim
        self.dropout = config.dropout_rate
        self.q = nn.Linear(config.d_model, self.inner_dim, bias=False)
        self.k = nn.Linear(config.d_model, self.inner_dim, bias=False)
        self.v = nn.Linear(config.d_model, self.inner_dim, bias=False)
        self.o = nn.Linear(self.inner_dim, config.d_model, bias=False)
        if has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(self.relative_attention_num_buckets, self.n_heads)

    def compute_bias(self, query_length, key_length, past_length=0):
        """[1, H, q, k] learned bias of each (query, key) pair's distance bucket; queries start at past_length."""
        context = np.arange(query_length)[:, None] + past_length
        memory = np.arange(key_length)[None, :]
        bucket = relative_position_bucket(
            memory - context, bidirectional=not self.is_decoder,
            num_buckets=self.relative_attention_num_buckets, max_distance=self.relative_attention_max_distance,
        )  # [q, k]
        values = self.relative_attention_bias(bucket)  # [q, k] -> [q, k, H]
        return values.permute(2, 0, 1).unsqueeze(0)  # [q, k, H] -> [1, H, q, k]

    def _heads(self, x):  # [B, T, H*d_kv] -> [B, H, T, d_kv]
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.key_value_proj_dim).transpose(1, 2)

    def forward(self, hidden_states, bias=None, key_value_states=None, past_key_value=None, use_cache=False):
        """bias: position bias plus mask, added to the scores ([1 or B, H, q, k]) or None.

        Self-attention appends the new keys/values to past_key_value; cross-attention (key_value_states
        given) reuses past_key_value whole, since the encoder output does not change while decoding.
        """
        q = self._heads(self.q(hidden_states))
        if key_value_states is None:
            k, v = self._heads(self.k(hidden_states)), self._heads(self.v(hidden_states))
            if past_key_value is not None:
                k = cat([past_key_value[0], k], dim=-2)  # [B, H, past + T, d_kv]
                v = cat([past_key_value[1], v], dim=-2)
        elif past_key_value is not None:
            k, v = past_key_value
        else:
            k, v = self._heads(self.k(key_value_states)), self._heads(self.v(key_value_states))
        present = (k, v) if use_cache else None
        p = self.dropout if self.training else 0.0
        out = sdpa_attention_forward(q, k, v, bias, dropout=p, scaling=1.0)  # [B, T, H*d_kv] (T5 does not scale)
        return self.o(out), present


class T5LayerSelfAttention(nn.Module):
    def __init__(self, config, has_relative_attention_bias=False, is_decoder=False):
        super().__init__()
        self.SelfAttention = T5Attention(config, has_relative_attention_bias, is_decoder)
        self.layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, x, bias=None, past_key_value=None, use_cache=False):
        a, present = self.SelfAttention(self.layer_norm(x), bias, past_key_value=past_key_value, use_cache=use_cache)
        return x + self.dropout(a), present


class T5LayerCrossAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.EncDecAttention = T5Attention(config, has_relative_attention_bias=False, is_decoder=True)
        self.layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, x, key_value_states, bias=None, past_key_value=None, use_cache=False):
        a, present = self.EncDecAttention(self.layer_norm(x), bias, key_value_states, past_key_value, use_cache)
        return x + self.dropout(a), present


class T5Block(GradientCheckpointingLayer):
    """layer.0 self-attention, (decoder only) layer.1 cross-attention, then the feed-forward layer."""

    def __init__(self, config, has_relative_attention_bias=False, is_decoder=False):
        super().__init__()
        self.is_decoder = is_decoder
        layers = [T5LayerSelfAttention(config, has_relative_attention_bias, is_decoder)]
        if is_decoder:
            layers.append(T5LayerCrossAttention(config))
        layers.append(T5LayerFF(config))
        self.layer = nn.ModuleList(layers)

    def forward(self, x, bias=None, encoder_hidden_states=None, cross_bias=None, past_key_value=None,
                use_cache=False):
        self_past = None if past_key_value is None else past_key_value[:2]
        # a (k, v) pair alone is a self-attention prefix (prefix tuning): cross k/v still come from the encoder
        cross_past = None if past_key_value is None or len(past_key_value) < 4 else past_key_value[2:]
        x, present = self.layer[0](x, bias, self_past, use_cache)
        if self.is_decoder and encoder_hidden_states is not None:
            x, cross_present = self.layer[1](x, encoder_hidden_states, cross_bias, cross_past, use_cache)
            present = present + cross_present if use_cache else None
        return self.layer[-1](x), present


class T5Stack(nn.Module):
    """The encoder or the decoder: shared embedding, blocks, final norm. Block 0 owns the position-bias table."""

    def __init__(self, config, embed_tokens, is_decoder=False):
        super().__init__()
        self.is_decoder = is_decoder
        self.embed_tokens = embed_tokens
        n = config.num_decoder_layers if is_decoder else config.num_layers
        self.block = nn.ModuleList([T5Block(config, i == 0, is_decoder) for i in range(n)])
        self.final_layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, input_ids=None, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None,
                inputs_embeds=None, past_key_values=None, use_cache=False,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        check_output_options(self, output_attentions, output_hidden_states, return_dict)
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)  # [B, T] -> [B, T, D]
        B, T = inputs_embeds.shape[:2]
        use_cache = use_cache and self.is_decoder
        past_len = past_length(past_key_values)
        dtype = inputs_embeds.dtype

        # mask and position bias are the same in every block: build them once, add them once
        mask = additive_mask(attention_mask_4d(attention_mask, B, T, past_len + T, causal=self.is_decoder), dtype)
        bias = self.block[0].layer[0].SelfAttention.compute_bias(T, past_len + T, past_len)  # [1, H, T, past + T]
        bias = bias if mask is None else bias + mask  # [B, H, T, past + T]
        cross_bias = None
        if self.is_decoder and encoder_hidden_states is not None:
            S = encoder_hidden_states.shape[1]
            cross_bias = additive_mask(attention_mask_4d(encoder_attention_mask, B, T, S, causal=False), dtype)

        x = self.dropout(inputs_embeds)
        x, presents = forward_layers(self.block, x, bias, encoder_hidden_states, cross_bias,
                                     past_key_values=past_key_values, use_cache=use_cache)
        x = self.dropout(self.final_layer_norm(x))
        return ModelOutput(last_hidden_state=x, past_key_values=presents)


class T5PreTrainedModel(PreTrainedModel):
    config_class = T5Config
    base_model_prefix = "transformer"
    # transformers used to save the decoder's unused cross-attention table and the tied embedding copies
    _keys_to_ignore_on_load_unexpected = [
        r"decoder\.block\.0\.layer\.1\.EncDecAttention\.relative_attention_bias\.weight",
        r"(en|de)coder\.embed_tokens\.weight",
    ]

    def _init_weights(self, module):
        """transformers' T5 scheme: each matrix N(0, factor / sqrt(fan_in)), q also divided by sqrt(d_kv)."""
        f = self.config.initializer_factor
        d, kv, H, ff = self.config.d_model, self.config.d_kv, self.config.num_heads, self.config.d_ff
        if isinstance(module, T5LayerNorm):
            nn.init.constant_(module.weight, f * 1.0)
        elif isinstance(module, (T5Model, T5ForConditionalGeneration, T5EncoderModel)):
            nn.init.normal_(module.shared.weight, std=f * 1.0)
            if hasattr(module, "lm_head") and not self.config.tie_word_embeddings:
                nn.init.normal_(module.lm_head.weight, std=f * 1.0)
        elif isinstance(module, T5DenseActDense):
            nn.init.normal_(module.wi.weight, std=f * d**-0.5)
            nn.init.normal_(module.wo.weight, std=f * ff**-0.5)
        elif isinstance(module, T5DenseGatedActDense):
            nn.init.normal_(module.wi_0.weight, std=f * d**-0.5)
            nn.init.normal_(module.wi_1.weight, std=f * d**-0.5)
            nn.init.normal_(module.wo.weight, std=f * ff**-0.5)
        elif isinstance(module, T5Attention):
            nn.init.normal_(module.q.weight, std=f * (d * kv) ** -0.5)
            nn.init.normal_(module.k.weight, std=f * d**-0.5)
            nn.init.normal_(module.v.weight, std=f * d**-0.5)
            nn.init.normal_(module.o.weight, std=f * (H * kv) ** -0.5)
            if module.has_relative_attention_bias:
                nn.init.normal_(module.relative_attention_bias.weight, std=f * d**-0.5)
        else:
            super()._init_weights(module)

    def _shift_right(self, input_ids):
        """labels [B, T] -> decoder inputs [B, T]: decoder_start_token_id, then labels[:, :-1] with -100 -> pad."""
        start, pad = self.config.decoder_start_token_id, self.config.pad_token_id
        if start is None or pad is None:
            raise ValueError("T5 needs config.decoder_start_token_id and config.pad_token_id (usually both 0).")
        ids = as_numpy(input_ids)
        shifted = np.empty_like(ids)
        shifted[..., 1:] = ids[..., :-1]
        shifted[..., 0] = start
        shifted[shifted == -100] = pad
        return shifted


class T5Model(T5PreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, self.shared, is_decoder=False)
        self.decoder = T5Stack(config, self.shared, is_decoder=True)

    def get_input_embeddings(self):
        return self.shared

    def get_encoder(self):
        return self.encoder

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, past_key_values=None, inputs_embeds=None, decoder_inputs_embeds=None,
                use_cache=False, output_attentions=None, output_hidden_states=None, return_dict=None):
        check_output_options(self, output_attentions, output_hidden_states, return_dict)
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                           inputs_embeds=inputs_embeds)
        return encoder_decoder_output(self.decoder, encoder_outputs, input_ids=decoder_input_ids,
                                      attention_mask=decoder_attention_mask, inputs_embeds=decoder_inputs_embeds,
                                      past_key_values=past_key_values, encoder_attention_mask=attention_mask,
                                      use_cache=use_cache)


class T5ForConditionalGeneration(T5PreTrainedModel, GenerationMixin):
    def __init__(self, config):
        super().__init__(config)
        self.model_dim = config.d_model
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, self.shared, is_decoder=False)
        self.decoder = T5Stack(config, self.shared, is_decoder=True)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)

    def get_input_embeddings(self):
        return self.shared

    def get_output_embeddings(self):
        return self.lm_head

    def get_encoder(self):
        return self.encoder

    def get_decoder(self):
        return self.decoder

    def prepare_decoder_input_ids_from_labels(self, labels):
        return self._shift_right(labels)

    def _load_checkpoint(self, state, source):
        # transformers >= 5 writes tie_word_embeddings=true for every T5, untied ones too; as it does, keep
        # a head the checkpoint stores apart from the embeddings instead of overwriting it with them
        head, emb = state.get("lm_head.weight"), state.get("shared.weight")
        if (self.lm_head.weight is self.shared.weight and head is not None and emb is not None
                and not np.array_equal(head, emb)):
            self.config.tie_word_embeddings = False
            self.lm_head.weight = nn.Parameter(nn.init.empty(*head.shape))
        super()._load_checkpoint(state, source)

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, past_key_values=None, inputs_embeds=None, decoder_inputs_embeds=None,
                labels=None, use_cache=False, output_attentions=None, output_hidden_states=None, return_dict=None):
        check_output_options(self, output_attentions, output_hidden_states, return_dict)
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                           inputs_embeds=inputs_embeds)
        if labels is not None and decoder_input_ids is None and decoder_inputs_embeds is None:
            decoder_input_ids = self._shift_right(labels)  # teacher forcing: predict labels[t] from labels[:t]
        out = encoder_decoder_output(self.decoder, encoder_outputs, input_ids=decoder_input_ids,
                                     attention_mask=decoder_attention_mask, inputs_embeds=decoder_inputs_embeds,
                                     past_key_values=past_key_values, encoder_attention_mask=attention_mask,
                                     use_cache=use_cache)
        h = out.last_hidden_state
        if self.config.scale_decoder_outputs:
            # the tied head reuses embeddings of norm ~1 per entry: rescale so logits stay O(1)
            h = h * (self.model_dim**-0.5)
        logits = self.lm_head(h)  # [B, T, D] -> [B, T, V]
        loss = None
        if labels is not None:
            labels = as_numpy(labels)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        return ModelOutput(loss=loss, logits=logits, past_key_values=out.past_key_values,
                           encoder_last_hidden_state=out.encoder_last_hidden_state)


class T5EncoderModel(T5PreTrainedModel):
    _keys_to_ignore_on_load_unexpected = [r"^decoder\.", r"^lm_head\.", r"encoder\.embed_tokens\.weight"]

    def __init__(self, config):
        super().__init__(config)
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, self.shared, is_decoder=False)

    def get_input_embeddings(self):
        return self.shared

    def get_encoder(self):
        return self.encoder

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        check_output_options(self, output_attentions, output_hidden_states, return_dict)
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds)


class MT5Model(T5Model):
    config_class = MT5Config


class MT5ForConditionalGeneration(T5ForConditionalGeneration):
    config_class = MT5Config


class MT5EncoderModel(T5EncoderModel):
    config_class = MT5Config
