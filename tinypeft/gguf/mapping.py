"""From llama.cpp's names and layout to transformers': the config, the tensor names, the Q/K rows.

llama.cpp's converter (convert_hf_to_gguf.py) renames every tensor (model.layers.3.self_attn.q_proj.weight
-> blk.3.attn_q.weight), moves the config into metadata keys (num_hidden_layers -> llama.block_count), and
for Llama reorders the rows of q_proj and k_proj: transformers rotates dims (j, j + hd/2) of a head
together (the "rotate half" layout), llama.cpp rotates (2i, 2i + 1) (interleaved pairs), so the converter
permutes each head's rows from [half 0 | half 1] to [pair 0 | pair 1 | ...]. We undo it as transformers'
GGUF loader does: view each head's hd rows as [2, hd/2] pairs-major and swap the two axes back.
"""
import logging

logger = logging.getLogger("tinypeft")

# general.architecture -> (tinypeft model_type, whether Q/K rows were permuted by the converter)
ARCHITECTURES = {"llama": ("llama", True)}

# metadata key (after "<arch>.") -> LlamaConfig field
LLAMA_CONFIG_KEYS = {
    "context_length": "max_position_embeddings",
    "block_count": "num_hidden_layers",
    "feed_forward_length": "intermediate_size",
    "embedding_length": "hidden_size",
    "rope.dimension_count": "head_dim",
    "rope.freq_base": "rope_theta",
    "attention.head_count": "num_attention_heads",
    "attention.head_count_kv": "num_key_value_heads",
    "attention.layer_norm_rms_epsilon": "rms_norm_eps",
    "vocab_size": "vocab_size",
}
TOKEN_ID_KEYS = {"bos_token_id": "bos_token_id", "eos_token_id": "eos_token_id",
                 "padding_token_id": "pad_token_id", "unknown_token_id": "unk_token_id"}

# GGUF tensor name (per block: "blk.{i}." + this) -> transformers module path ("model.layers.{i}." + this)
LLAMA_BLOCK_TENSORS = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
LLAMA_TOP_TENSORS = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
# tensors llama.cpp adds that transformers recomputes (rotary frequencies): skipped, as transformers does
IGNORED_TENSORS = {"rope_freqs.weight"}


def check_architecture(gf):
    arch = gf.architecture
    if arch not in ARCHITECTURES:
        raise NotImplementedError(
            f"{gf.path}: GGUF architecture {arch!r} has no mapping to a tinypeft model; supported: "
            f"{sorted(ARCHITECTURES)}. Convert the model to safetensors with transformers if tinypeft has its "
            "architecture (AutoModelForCausalLM.from_pretrained(dir, gguf_file=...).save_pretrained(out))."
        )
    return ARCHITECTURES[arch]


def config_dict_from_gguf(gf):
    """The config.json transformers would build from this file's metadata, as a dict."""
    model_type, _ = check_architecture(gf)
    arch = gf.architecture
    config = {"model_type": model_type, "architectures": ["LlamaForCausalLM"]}
    for key, field in LLAMA_CONFIG_KEYS.items():
        value = gf.metadata.get(f"{arch}.{key}")
        if value is not None:
            config[field] = value
    for key, field in TOKEN_ID_KEYS.items():
        value = gf.metadata.get(f"tokenizer.ggml.{key}")
        if value is not None:
            config[field] = value
    if "vocab_size" not in config and "tokenizer.ggml.tokens" in gf.metadata:
        config["vocab_size"] = len(gf.metadata["tokenizer.ggml.tokens"])
    # no separate output matrix in the file: the LM head is the embedding (tied)
    config["tie_word_embeddings"] = "output.weight" not in gf.tensors
    missing = [f for f in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size") if f not in config]
    if missing:
        raise ValueError(f"{gf.path}: the metadata lacks what {missing} are read from; the file is incomplete.")
    return config


def gguf_to_hf_name(name):
    """blk.3.attn_q.weight -> model.layers.3.self_attn.q_proj.weight; None for a tensor with no place."""
    base, _, suffix = name.rpartition(".")
    if suffix not in ("weight", "bias"):
        return None
    if base in LLAMA_TOP_TENSORS:
        return f"{LLAMA_TOP_TENSORS[base]}.{suffix}"
    parts = base.split(".")
    if len(parts) == 3 and parts[0] == "blk" and parts[1].isdigit() and parts[2] in LLAMA_BLOCK_TENSORS:
        return f"model.layers.{parts[1]}.{LLAMA_BLOCK_TENSORS[parts[2]]}.{suffix}"
    return None


def unpermute_qk_rows(w, n_head):
    """Undo llama.cpp's rotary row order: per head, rows [p0a p0b p1a p1b ...] -> [p0a p1a ... | p0b p1b ...].

    w [n_head * hd, ...]: the converter did w.reshape(n_head, 2, hd/2, ...).swapaxes(1, 2); swapping the
    same axes of the [n_head, hd/2, 2, ...] view undoes it.
    """
    hd = w.shape[0] // n_head
    return w.reshape(n_head, hd // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def state_dict_from_gguf(gf, config):
    """{transformers name: float32 array} for every tensor of the file that has a place in the model."""
    _, permuted = check_architecture(gf)
    state, unused = {}, []
    for name in gf.tensors:
        hf = gguf_to_hf_name(name)
        if hf is None:
            if name not in IGNORED_TENSORS:
                unused.append(name)
            continue
        w = gf.dequantize(name)
        if permuted and name.endswith(("attn_q.weight", "attn_q.bias")):
            w = unpermute_qk_rows(w, config.num_attention_heads)
        elif permuted and name.endswith(("attn_k.weight", "attn_k.bias")):
            w = unpermute_qk_rows(w, config.num_key_value_heads)
        state[hf] = w
    if unused:
        logger.warning("%s: tensors with no place in a tinypeft %s model, not loaded: %s",
                       gf.path, config.model_type, unused)
    return state
