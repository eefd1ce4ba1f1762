"""A decoding step in plain NumPy: one new token per row, keys and values written into a preallocated cache.

generate() runs the prompt through the model's modules (the reference path, which knows padding, adapters
and every option), and then, for GPT-2 and Llama models whose layers are the plain ones, each new token
through the functions below. They do the modules' arithmetic on the arrays behind the parameters, with no
Tensor wrappers, no module calls and no copy of the cache per step: the cache is one array per layer,
[B, H_kv, max_length, head_dim], and a step writes one column of it and attends to the filled part (a view).
A model with an adapter injected (LoRA, IA3, ...), in training mode or on a GPU keeps the module path.
tests/test_fast_decode.py checks that both paths give the same logits and tokens.
"""
import math

import numpy as np

from .. import backend, nn
from ..backend import fused
from ..quantization import matmul as qmm


class StaticCache:
    """Per layer, keys and values [B, H_kv, max_length, hd]; the first `length` positions are filled."""

    def __init__(self, past, max_length):
        B, H, T, hd = past[0][0].shape  # the prompt's cache from the module path
        self.keys = [np.zeros((B, H, max_length, hd), np.float32) for _ in past]
        self.values = [np.zeros((B, H, max_length, hd), np.float32) for _ in past]
        for i, (k, v) in enumerate(past):
            self.keys[i][:, :, :T] = np.asarray(k.data)
            self.values[i][:, :, :T] = np.asarray(v.data)
        self.length = T

    def append(self, layer, k, v):
        """Write k, v [B, H_kv, hd] at position `length`; return the filled keys and values [B, H_kv, length + 1, hd]."""
        L = self.length
        self.keys[layer][:, :, L] = k
        self.values[layer][:, :, L] = v
        return self.keys[layer][:, :, :L + 1], self.values[layer][:, :, :L + 1]

    def reorder(self, rows):
        """Beam search: row i becomes the old row rows[i]."""
        self.keys = [k[rows] for k in self.keys]
        self.values = [v[rows] for v in self.values]


def _linear(x, layer):
    """x [B, in] -> [B, out] for nn.Linear (weight [out, in]), GPT-2's Conv1D (weight [in, out]) and the
    quantized layers (GGUFLinear, Linear4bit, Linear8bitLt: their weight's C product, decoded as it is read)."""
    w = layer.weight
    if getattr(w, "quant_kind", None) is not None:
        out = qmm.matmul(x, w)
    else:
        out = backend.matmul(x, w.data if getattr(layer, "nf", None) is not None else w.data.T)
    return out + layer.bias.data if layer.bias is not None else out


def _group(*layers):
    """A GemvGroup making these layers' one-row products in one C call, or None: only quantized layers without
    bias (a Llama layer's q, k, v or gate, up) are grouped; float32 layers go through _linear one by one."""
    if not qmm._use_c() or any(getattr(layer.weight, "quant_kind", None) is None or layer.bias is not None
                               for layer in layers):
        return None
    return qmm.GemvGroup([layer.weight for layer in layers])


def _kept_head(model):
    """A GemvGroup for the head from the GGUF file's blocks of it, or None.

    GGUFQuantizationConfig keeps the file's head blocks beside the float32 head (gguf_lm_head_blocks). They are
    the same weights in a quarter of the bytes (Q8_0), and the head is the largest product of a step; they are
    used only while the float32 head is bit for bit their dequantization, checked here, once per generate()."""
    from ..quantization import GGUFParameter

    kept = getattr(model, "gguf_lm_head_blocks", None)
    if kept is None or not qmm._use_c():
        return None
    values = model.lm_head.weight.data
    head = GGUFParameter(kept[1], quant_type=kept[0], quant_shape=values.shape)
    return qmm.GemvGroup([head]) if qmm.dequantizes_to(head, values) else None


def _linears(x, layers, group):
    """[_linear(x, layer) for layer in layers]; with a group and one row, the same from one C call."""
    if group is None or x.shape[0] != 1:
        return [_linear(x, layer) for layer in layers]
    out = group(x)
    return [out[:, a:b] for a, b in group.bounds]


def _attend(q, keys, values, key_mask, scale):
    """q [B, H_kv, G, hd] (G query heads share a key/value head), keys/values [B, H_kv, L, hd] -> [B, H_kv, G, hd];
    key_mask [B, L] bool, or None when no key is padding."""
    s = np.einsum("bkgd,bkld->bkgl", q, keys) * np.float32(scale)
    if key_mask is not None:  # None: every key is a real token
        s = np.where(key_mask[:, None, None, :], s, np.float32(-np.inf))  # padding keys take no weight
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return np.einsum("bkgl,bkld->bkgd", p, values)


def _layer_norm(x, norm):
    if fused.applies(x, norm.weight.data, norm.bias.data):
        return fused.layer_norm(x, norm.weight.data, norm.bias.data, norm.eps)[0]  # the lines below, in C
    xhat = x - x.mean(-1, keepdims=True)
    xhat /= np.sqrt((xhat * xhat).mean(-1, keepdims=True) + norm.eps)
    return xhat * norm.weight.data + norm.bias.data


def _rms_norm(x, norm):
    if fused.applies(x, norm.weight.data):
        return fused.rms_norm(x, norm.weight.data, norm.eps)[0]  # the line below, in C
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + norm.eps) * norm.weight.data


class GPT2Decoder:
    """One token through GPT2LMHeadModel: x = wte[id] + wpe[pos]; per block x += attn(ln_1 x), x += mlp(ln_2 x)."""

    def __init__(self, model):
        self.model, cfg = model, model.config
        self.H, self.hd = cfg.n_head, cfg.n_embd // cfg.n_head

    def __call__(self, ids, positions, key_mask, cache):
        """ids, positions [B]; key_mask [B, L + 1] bool (L cached keys, then the new one) -> logits [B, V]."""
        tr, B = self.model.transformer, len(ids)
        key_mask = None if key_mask.all() else key_mask
        x = tr.wte.weight.data[ids] + tr.wpe.weight.data[positions]  # [B, D]
        for i, block in enumerate(tr.h):
            attn = block.attn
            q, k, v = np.split(_linear(_layer_norm(x, block.ln_1), attn.c_attn), 3, axis=-1)  # 3 x [B, D]
            keys, values = cache.append(i, k.reshape(B, self.H, self.hd), v.reshape(B, self.H, self.hd))
            o = _attend(q.reshape(B, self.H, 1, self.hd), keys, values, key_mask, attn.scale)  # [B, H, 1, hd]
            x = x + _linear(o.reshape(B, -1), attn.c_proj)
            mlp = block.mlp
            x = x + _linear(_gelu_tanh(_linear(_layer_norm(x, block.ln_2), mlp.c_fc)), mlp.c_proj)
        return _linear(_layer_norm(x, tr.ln_f), self.model.lm_head)  # [B, V]


class LlamaDecoder:
    """One token through LlamaForCausalLM: RMSNorm, rotary q/k, grouped-query attention, SwiGLU."""

    def __init__(self, model):
        self.model, cfg = model, model.config
        self.H, self.Hkv, self.hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        rotary = model.model.rotary_emb
        self.inv_freq, self.rope_scale = rotary.inv_freq, rotary.attention_scaling
        self.groups = [(_group(a.q_proj, a.k_proj, a.v_proj), _group(layer.mlp.gate_proj, layer.mlp.up_proj))
                       for layer in model.model.layers for a in [layer.self_attn]]
        self.head = _kept_head(model)
        self.layer_steps = _layer_steps(model, self.groups)

    def _rope(self, x, cos, sin):
        """x [B, n, hd] rotated by the angles of its row's position (halves layout, as rotate_half)."""
        half = self.hd // 2
        rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
        return x * cos + rotated * sin

    def __call__(self, ids, positions, key_mask, cache):
        m, B = self.model.model, len(ids)
        key_mask = None if key_mask.all() else key_mask  # no padding: no mask to apply in 30 layers
        x = m.embed_tokens.weight.data[ids]  # [B, D]
        freqs = positions[:, None].astype(np.float32) * self.inv_freq  # [B, hd / 2]
        emb = np.concatenate([freqs, freqs], axis=-1)[:, None, :]  # [B, 1, hd]
        cos = (np.cos(emb) * self.rope_scale).astype(np.float32)
        sin = (np.sin(emb) * self.rope_scale).astype(np.float32)
        if self.layer_steps is not None and B == 1 and key_mask is None:  # the loop below, in C, a layer a call
            x = _c_layers(self.layer_steps, x, cos, sin, cache)
            return _linears(_rms_norm(x, m.norm), (self.model.lm_head,), self.head)[0]
        G = self.H // self.Hkv
        for i, (layer, (qkv, gate_up)) in enumerate(zip(m.layers, self.groups)):
            a = layer.self_attn
            h = _rms_norm(x, layer.input_layernorm)
            q, k, v = _linears(h, (a.q_proj, a.k_proj, a.v_proj), qkv)
            q = self._rope(q.reshape(B, self.H, self.hd), cos, sin)
            k = self._rope(k.reshape(B, self.Hkv, self.hd), cos, sin)
            keys, values = cache.append(i, k, v.reshape(B, self.Hkv, self.hd))
            o = _attend(q.reshape(B, self.Hkv, G, self.hd), keys, values, key_mask, a.scaling)
            x = x + _linear(o.reshape(B, -1), a.o_proj)
            mlp, h = layer.mlp, _rms_norm(x, layer.post_attention_layernorm)
            gate, up = _linears(h, (mlp.gate_proj, mlp.up_proj), gate_up)
            x = x + _linear(gate / (1 + np.exp(-gate)) * up, mlp.down_proj)  # silu(g) * up
        return _linears(_rms_norm(x, m.norm), (self.model.lm_head,), self.head)[0]  # [B, V]


def _layer_steps(model, groups):
    """Per decoder layer, its tp_llama_layer for csrc/decode_step.c (LlamaDecoder's loop body in one C call), or
    None unless every projection is quantized without bias (its products are the grouped C GEMVs)."""
    if any(qkv is None or gate_up is None for qkv, gate_up in groups):
        return None
    steps, cfg = [], model.config
    for layer, (qkv, gate_up) in zip(model.model.layers, groups):
        a, mlp = layer.self_attn, layer.mlp
        o, down = _group(a.o_proj), _group(mlp.down_proj)
        if o is None or down is None or layer.input_layernorm.eps != layer.post_attention_layernorm.eps:
            return None
        norms = [np.ascontiguousarray(n.weight.data, np.float32)
                 for n in (layer.input_layernorm, layer.post_attention_layernorm)]
        st = qmm.cmatmul.ffi.new("tp_llama_layer *")
        st.qkv, st.o, st.gate_up, st.down = qkv.structs, o.structs, gate_up.structs, down.structs
        st.input_norm, st.post_norm = (qmm._ptr(n, "float *") for n in norms)
        st.eps, st.scale = layer.input_layernorm.eps, a.scaling
        st.hidden, st.heads, st.kv_heads = cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads
        st.head_dim, st.intermediate = cfg.head_dim, cfg.intermediate_size
        steps.append((st, (qkv, o, gate_up, down, norms)))  # the arrays the struct points to, kept alive
    return steps


def _c_layers(steps, x, cos, sin, cache):
    """x [1, D] through every layer by csrc/decode_step.c, the cache written in place at cache.length."""
    cmatmul = qmm.cmatmul
    x = np.array(x, dtype=np.float32)  # updated in place, layer by layer
    cos, sin = np.ascontiguousarray(cos.reshape(-1)), np.ascontiguousarray(sin.reshape(-1))
    xp, cp, sp = (qmm._ptr(a, "float *") for a in (x, cos, sin))
    threads = cmatmul.get_num_threads()
    for i, (st, _) in enumerate(steps):
        keys, values = cache.keys[i], cache.values[i]  # [1, H_kv, max_length, hd], C-contiguous
        st.keys, st.values, st.max_length = qmm._ptr(keys, "float *"), qmm._ptr(values, "float *"), keys.shape[2]
        if cmatmul.lib.tp_llama_decode_layer(st, xp, cache.length, cp, sp, threads):
            raise RuntimeError(f"decoding step, layer {i}: the cache of {keys.shape[2]} positions is full, or out of "
                               "memory.")
    return x


def _gelu_tanh(x):
    """GPT-2's GELU: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1 + np.tanh(np.float32(math.sqrt(2 / math.pi)) * (x + np.float32(0.044715) * x * x * x)))


def fast_decoder(model):
    """The plain-NumPy decoder for this model, or None when the module path must run.

    Only when every module is one whose arithmetic the decoder repeats: an adapter layer, a custom
    module or an unexpected setting sends generation down the module path, which handles everything.
    """
    from .gpt2 import Conv1D, GPT2Attention, GPT2Block, GPT2LMHeadModel, GPT2MLP, GPT2Model
    from .llama import (LlamaAttention, LlamaDecoderLayer, LlamaForCausalLM, LlamaMLP, LlamaModel,
                        LlamaRotaryEmbedding)

    from ..quantization import GGUFLinear, Linear4bit, Linear8bitLt

    plain = {nn.Linear, nn.Embedding, nn.LayerNorm, nn.RMSNorm, nn.Dropout, nn.ModuleList, Conv1D,
             GGUFLinear, Linear4bit, Linear8bitLt}
    cfg = model.config
    if type(model) is GPT2LMHeadModel:
        if cfg.activation_function not in ("gelu_new", "gelu_pytorch_tanh"):
            return None
        plain |= {GPT2Model, GPT2Block, GPT2Attention, GPT2MLP, GPT2LMHeadModel}
        decoder = GPT2Decoder
    elif type(model) is LlamaForCausalLM:
        if cfg.hidden_act != "silu" or getattr(cfg, "sliding_window", None):  # the step attends to every key
            return None
        plain |= {LlamaModel, LlamaDecoderLayer, LlamaAttention, LlamaMLP, LlamaRotaryEmbedding, LlamaForCausalLM}
        decoder = LlamaDecoder
    else:
        return None
    if model.training or backend.get_device() != "cpu":
        return None
    mods = [m for _, m in model.named_modules()]
    if any(type(m) not in plain for m in mods):
        return None
    if any(p.data.dtype != np.float32 for p in model.parameters() if getattr(p, "quant_kind", None) is None):
        return None
    return decoder(model)


__all__ = ["StaticCache", "GPT2Decoder", "LlamaDecoder", "fast_decoder"]
