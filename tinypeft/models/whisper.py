"""Whisper (Radford et al., 2022), with the module names of transformers' modeling_whisper.

An encoder-decoder transformer for speech:
- the encoder reads a log-mel spectrogram [B, num_mel_bins, 3000] (30 s at 100 frames/s) through two
  Conv1d + GELU layers, the second of stride 2, so the encoder sees 1500 positions; to these it adds
  fixed sinusoidal positions (stored in the checkpoint as encoder.embed_positions, never trained);
- the decoder is a GPT-2-like stack with learned positions, a causal self-attention, then a
  cross-attention to the encoder output; the output projection proj_out shares the token embedding;
- pre-norm blocks (LayerNorm before each sub-layer, one final LayerNorm per stack), k_proj has no bias,
  queries are scaled by head_dim**-0.5 before the product (transformers keeps that order, and so do we).
Decoding (language and task tokens, suppressed tokens) lives in generation_whisper.py.

Key/value cache: one tuple per decoder layer, (self_k, self_v, cross_k, cross_v), each [B, H, T, hd]. The
cross-attention keys and values depend only on the encoder output: computed at the first step, then reused.
"""
import math

import numpy as np

from .. import functional as F
from .. import nn
from ..creation import generator
from ..ops.shape import cat
from ..tensor import as_numpy
from .activations import activation
from .configuration_utils import PretrainedConfig
from .generation_whisper import WhisperGenerationMixin
from .masking import attention_mask_4d, past_length
from .modeling_layers import GradientCheckpointingLayer, forward_layers
from .modeling_utils import ModelOutput, PreTrainedModel, check_output_options, embed_inputs, encoder_decoder_output
from .sdpa_attention import sdpa_attention_forward


class WhisperConfig(PretrainedConfig):
    model_type = "whisper"
    defaults = dict(
        vocab_size=51865, num_mel_bins=80, encoder_layers=4, encoder_attention_heads=6, decoder_layers=4,
        decoder_attention_heads=6, decoder_ffn_dim=1536, encoder_ffn_dim=1536, encoder_layerdrop=0.0,
        decoder_layerdrop=0.0, decoder_start_token_id=50257, use_cache=True, is_encoder_decoder=True,
        activation_function="gelu", d_model=384, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
        init_std=0.02, scale_embedding=False, max_source_positions=1500, max_target_positions=448,
        pad_token_id=50256, bos_token_id=50256, eos_token_id=50256, suppress_tokens=None,
        begin_suppress_tokens=[220, 50256], apply_spec_augment=False, mask_time_prob=0.05, mask_feature_prob=0.0,
        tie_word_embeddings=True,
    )
    attribute_map = {
        "num_key_value_heads": "encoder_attention_heads", "num_attention_heads": "encoder_attention_heads",
        "hidden_size": "d_model", "num_hidden_layers": "encoder_layers", "initializer_range": "init_std",
    }


def sinusoids(length, channels, max_timescale=10000):
    """[length, channels]: sin(t * w_i) in the first half, cos(t * w_i) in the second, w_i geometric from 1 to 1/10000."""
    if channels % 2:
        raise ValueError(f"Sinusoidal positions need an even number of channels, got {channels}.")
    log_increment = math.log(max_timescale) / (channels // 2 - 1)
    # float32 products as torch forms them; exp correctly rounded to float32 (through float64): a last-bit
    # difference in a frequency grows to 5e-5 at position 1500
    exponents = np.float32(-log_increment) * np.arange(channels // 2, dtype=np.float32)
    inv_timescales = np.exp(exponents.astype(np.float64)).astype(np.float32)
    scaled = np.arange(length, dtype=np.float32)[:, None] * inv_timescales[None, :]
    return np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1)


class WhisperSinusoidalPositions(nn.Embedding):
    """The encoder's positions: an Embedding table filled with sinusoids and frozen (requires_grad=False)."""

    def __init__(self, num_positions, embedding_dim):
        super().__init__(num_positions, embedding_dim)
        self.weight.requires_grad_(False)


class WhisperPositionalEmbedding(nn.Embedding):
    """The decoder's learned positions [max_target_positions, d_model], read at position_ids."""

    def forward(self, position_ids):
        return F.embedding(position_ids, self.weight)  # [B, T] -> [B, T, D]


class WhisperAttention(nn.Module):
    def __init__(self, embed_dim, num_heads, dropout=0.0, is_decoder=False, bias=True, is_causal=False,
                 layer_idx=None, config=None):
        super().__init__()
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise ValueError(f"embed_dim must be divisible by num_heads (got {embed_dim} and {num_heads}).")
        self.scaling = self.head_dim**-0.5
        self.is_decoder, self.is_causal, self.layer_idx = is_decoder, is_causal, layer_idx
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=False)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    def _heads(self, x):  # [B, T, D] -> [B, H, T, hd]
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, hidden_states, key_value_states=None, past_key_value=None, attention_mask=None,
                use_cache=False):
        """Self-attention appends to past_key_value; cross-attention (key_value_states given) reuses it whole."""
        q = self._heads(self.q_proj(hidden_states) * self.scaling)
        if key_value_states is not None and past_key_value is not None:
            k, v = past_key_value  # the encoder output has not changed since the first step
        else:
            src = hidden_states if key_value_states is None else key_value_states
            k, v = self._heads(self.k_proj(src)), self._heads(self.v_proj(src))
            if key_value_states is None and past_key_value is not None:
                k = cat([past_key_value[0], k], dim=-2)  # [B, H, T_past + T, hd]
                v = cat([past_key_value[1], v], dim=-2)
        present = (k, v) if use_cache else None
        p = self.dropout if self.training else 0.0
        out = sdpa_attention_forward(q, k, v, attention_mask, dropout=p, scaling=1.0)  # [B, T, D]: q is scaled
        return self.out_proj(out), present


class _FeedForward(GradientCheckpointingLayer):
    """Shared by both layer types: x + dropout(fc2(act_dropout(act(fc1(LN(x))))))."""

    def _ffn(self, x):
        h = self.activation_fn(self.fc1(self.final_layer_norm(x)))  # [B, T, D] -> [B, T, ffn]
        h = F.dropout(h, self.activation_dropout, self.training)
        return x + F.dropout(self.fc2(h), self.dropout, self.training)


class WhisperEncoderLayer(_FeedForward):
    def __init__(self, config):
        super().__init__()
        self.embed_dim = config.d_model
        self.self_attn = WhisperAttention(self.embed_dim, config.encoder_attention_heads, config.attention_dropout,
                                          config=config)
        self.self_attn_layer_norm = nn.LayerNorm(self.embed_dim)
        self.dropout, self.activation_dropout = config.dropout, config.activation_dropout
        self.activation_fn = activation(config.activation_function)
        self.fc1 = nn.Linear(self.embed_dim, config.encoder_ffn_dim)
        self.fc2 = nn.Linear(config.encoder_ffn_dim, self.embed_dim)
        self.final_layer_norm = nn.LayerNorm(self.embed_dim)

    def forward(self, x):
        h, _ = self.self_attn(self.self_attn_layer_norm(x))
        x = x + F.dropout(h, self.dropout, self.training)
        return self._ffn(x)


class WhisperDecoderLayer(_FeedForward):
    def __init__(self, config, layer_idx=None):
        super().__init__()
        self.embed_dim = d = config.d_model
        H = config.decoder_attention_heads
        self.self_attn = WhisperAttention(d, H, config.attention_dropout, is_decoder=True, is_causal=True,
                                          layer_idx=layer_idx, config=config)
        self.dropout, self.activation_dropout = config.dropout, config.activation_dropout
        self.activation_fn = activation(config.activation_function)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.encoder_attn = WhisperAttention(d, H, config.attention_dropout, is_decoder=True, layer_idx=layer_idx,
                                             config=config)
        self.encoder_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, config.decoder_ffn_dim)
        self.fc2 = nn.Linear(config.decoder_ffn_dim, d)
        self.final_layer_norm = nn.LayerNorm(d)

    def forward(self, x, mask=None, encoder_hidden_states=None, past_key_value=None, use_cache=False):
        self_past = None if past_key_value is None else past_key_value[:2]
        cross_past = None if past_key_value is None or len(past_key_value) < 4 else past_key_value[2:]
        h, present = self.self_attn(self.self_attn_layer_norm(x), past_key_value=self_past, attention_mask=mask,
                                    use_cache=use_cache)
        x = x + F.dropout(h, self.dropout, self.training)
        if encoder_hidden_states is not None:
            h, cross = self.encoder_attn(self.encoder_attn_layer_norm(x), key_value_states=encoder_hidden_states,
                                         past_key_value=cross_past, use_cache=use_cache)
            x = x + F.dropout(h, self.dropout, self.training)
            present = present + cross if use_cache else None
        return self._ffn(x), present


class WhisperPreTrainedModel(PreTrainedModel):
    config_class = WhisperConfig
    base_model_prefix = "model"
    main_input_name = "input_features"

    def _init_weights(self, module):
        """transformers' scheme: N(0, init_std) for Linear, Conv1d and Embedding; sinusoids for the encoder positions."""
        if isinstance(module, WhisperSinusoidalPositions):
            if not nn.init.is_unallocated(module.weight):
                module.weight.data[...] = sinusoids(*module.weight.shape)
        elif isinstance(module, nn.Conv1d):
            nn.init.normal_(module.weight, std=self.config.init_std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        else:
            super()._init_weights(module)


class WhisperEncoder(WhisperPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        d = config.d_model
        self.dropout, self.layerdrop = config.dropout, config.encoder_layerdrop
        self.num_mel_bins, self.max_source_positions = config.num_mel_bins, config.max_source_positions
        # config.scale_embedding is read by transformers but never applied in Whisper's forward; so here
        self.conv1 = nn.Conv1d(self.num_mel_bins, d, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(d, d, kernel_size=3, stride=2, padding=1)
        self.embed_positions = WhisperSinusoidalPositions(self.max_source_positions, d)
        self.layers = nn.ModuleList([WhisperEncoderLayer(config) for _ in range(config.encoder_layers)])
        self.layer_norm = nn.LayerNorm(d)

    def forward(self, input_features, attention_mask=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        """input_features [B, num_mel_bins, 2 * max_source_positions] -> last_hidden_state [B, max_source_positions, D]."""
        check_output_options(self, output_attentions, output_hidden_states, return_dict)
        expected = self.max_source_positions * self.conv1.stride[0] * self.conv2.stride[0]
        shape = tuple(input_features.shape)
        if len(shape) != 3 or shape[1] != self.num_mel_bins or shape[2] != expected:
            raise ValueError(
                f"Whisper expects input features of shape (batch, {self.num_mel_bins}, {expected}), got {shape}. "
                f"Pad or cut the audio to the feature extractor's chunk_length (WhisperFeatureExtractor does).")
        x = F.gelu(self.conv1(input_features))  # [B, mels, 3000] -> [B, D, 3000]
        x = F.gelu(self.conv2(x))  # -> [B, D, 1500]
        x = x.permute(0, 2, 1) + self.embed_positions.weight  # [B, 1500, D]
        x = F.dropout(x, self.dropout, self.training)
        for layer in self.layers:
            if self.training and self.layerdrop > 0 and generator().random() < self.layerdrop:
                continue  # LayerDrop: skip whole layers while training
            x = layer(x)
        return ModelOutput(last_hidden_state=self.layer_norm(x))


class WhisperDecoder(WhisperPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        d = config.d_model
        self.dropout, self.layerdrop = config.dropout, config.decoder_layerdrop
        self.padding_idx = config.pad_token_id
        self.max_target_positions = config.max_target_positions
        self.embed_tokens = nn.Embedding(config.vocab_size, d, self.padding_idx)
        self.embed_positions = WhisperPositionalEmbedding(self.max_target_positions, d)
        self.layers = nn.ModuleList([WhisperDecoderLayer(config, i) for i in range(config.decoder_layers)])
        self.layer_norm = nn.LayerNorm(d)

    def get_input_embeddings(self):
        return self.embed_tokens

    def forward(self, input_ids=None, attention_mask=None, encoder_hidden_states=None, past_key_values=None,
                inputs_embeds=None, position_ids=None, use_cache=False,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        check_output_options(self, output_attentions, output_hidden_states, return_dict)
        inputs_embeds = embed_inputs(self.embed_tokens, input_ids, inputs_embeds,  # [B, T] -> [B, T, D]
                                     names=("decoder_input_ids", "decoder_inputs_embeds"))
        B, T = inputs_embeds.shape[:2]
        past_len = past_length(past_key_values)
        if past_len + T > self.max_target_positions:
            raise ValueError(f"The decoder has {self.max_target_positions} positions (max_target_positions); "
                             f"{past_len + T} tokens do not fit. Generate fewer tokens.")
        if position_ids is None:
            position_ids = np.broadcast_to(np.arange(past_len, past_len + T), (B, T))
        x = inputs_embeds + self.embed_positions(position_ids)
        x = F.dropout(x, self.dropout, self.training)
        mask = attention_mask_4d(attention_mask, B, T, past_len + T, causal=True)  # [B, 1, T, past + T]
        x, presents = forward_layers(self.layers, x, mask, encoder_hidden_states, past_key_values=past_key_values,
                                     use_cache=use_cache, layerdrop=self.layerdrop, training=self.training)
        return ModelOutput(last_hidden_state=self.layer_norm(x), past_key_values=presents)


class WhisperModel(WhisperPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.encoder = WhisperEncoder(config)
        self.decoder = WhisperDecoder(config)

    def get_input_embeddings(self):
        return self.decoder.embed_tokens

    def get_encoder(self):
        return self.encoder

    def get_decoder(self):
        return self.decoder

    def freeze_encoder(self):
        for p in self.encoder.parameters():
            p.requires_grad = False

    def forward(self, input_features=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, past_key_values=None, decoder_inputs_embeds=None, decoder_position_ids=None,
                use_cache=False, input_ids=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        check_output_options(self, output_attentions, output_hidden_states, return_dict)
        if input_ids is not None:
            raise ValueError("Whisper reads input_features (log-mel spectrograms), not input_ids: use "
                             "WhisperFeatureExtractor, and pass the text as decoder_input_ids or labels.")
        cfg = self.config
        if self.training and cfg.apply_spec_augment and (cfg.mask_time_prob or cfg.mask_feature_prob):
            raise NotImplementedError("SpecAugment (config.apply_spec_augment=True) is not implemented: set "
                                      "model.config.apply_spec_augment = False to train without it.")
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_features)  # attention_mask: unused, as in transformers
        return encoder_decoder_output(self.decoder, encoder_outputs, input_ids=decoder_input_ids,
                                      attention_mask=decoder_attention_mask, past_key_values=past_key_values,
                                      inputs_embeds=decoder_inputs_embeds, position_ids=decoder_position_ids,
                                      use_cache=use_cache)


def shift_tokens_right(labels, pad_token_id, decoder_start_token_id):
    """labels [B, T] -> decoder inputs: decoder_start_token_id, then labels[:, :-1], with -100 -> pad."""
    ids = as_numpy(labels)
    shifted = np.empty_like(ids)
    shifted[:, 1:] = ids[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    shifted[shifted == -100] = pad_token_id
    return shifted


class WhisperForConditionalGeneration(WhisperGenerationMixin, WhisperPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.model = WhisperModel(config)
        self.proj_out = nn.Linear(config.d_model, config.vocab_size, bias=False)  # tied to embed_tokens
        self.max_target_positions = config.max_target_positions

    def get_output_embeddings(self):
        return self.proj_out

    def get_encoder(self):
        return self.model.encoder

    def get_decoder(self):
        return self.model.decoder

    def freeze_encoder(self):
        self.model.freeze_encoder()

    def prepare_decoder_input_ids_from_labels(self, labels):
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def forward(self, input_features=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, past_key_values=None, decoder_inputs_embeds=None, decoder_position_ids=None,
                labels=None, use_cache=False, **kwargs):
        if labels is not None:
            labels = as_numpy(labels)
            if labels.shape[1] > self.max_target_positions:
                raise ValueError(f"Labels' length {labels.shape[1]} exceeds max_target_positions "
                                 f"({self.max_target_positions}).")
            if decoder_input_ids is None and decoder_inputs_embeds is None:
                decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)  # teacher forcing
        out = self.model(input_features, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
                         decoder_attention_mask=decoder_attention_mask, encoder_outputs=encoder_outputs,
                         past_key_values=past_key_values, decoder_inputs_embeds=decoder_inputs_embeds,
                         decoder_position_ids=decoder_position_ids, use_cache=use_cache, **kwargs)
        logits = self.proj_out(out.last_hidden_state)  # [B, T, D] -> [B, T, V]
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        return ModelOutput(loss=loss, logits=logits, past_key_values=out.past_key_values,
                           encoder_last_hidden_state=out.encoder_last_hidden_state)
