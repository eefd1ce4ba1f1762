"""The tokenizer stored in a GGUF file's metadata, rebuilt as a `tokenizers.Tokenizer`.

A GGUF has no tokenizer.json; llama.cpp keeps the pieces under tokenizer.ggml.*:

    model        "gpt2" (byte-level BPE, as GPT-2, Llama 3, Qwen, SmolLM) or "llama" (SentencePiece), ...
    pre          which pre-tokenizer split the merges were learned with ("smollm", "llama-bpe", "qwen2", ...)
    tokens       the vocabulary, id order; token_type: 1 normal, 3 control (<|im_end|>), 4 user-defined
    merges       "a b" strings, best first
    bos/eos/padding/unknown_token_id, add_bos_token, add_eos_token

We build the same pipeline transformers builds from them (a GPT2 tokenizer plus the file's control tokens
as special tokens), so ids match transformers' GGUF tokenizer. Byte-level BPE is supported; SentencePiece
("llama") vocabularies raise a clear error.
"""
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

from ..tokenization import bytes_to_unicode

CONTROL, USER_DEFINED = 3, 4

# tokenizer.ggml.pre -> the split regex its merges were learned with (the default is GPT-2's own regex,
# which ByteLevel applies). The patterns are those of the models' published tokenizer.json files.
_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
PRE_TOKENIZER_SPLITS = {"llama3": _LLAMA3_SPLIT, "llama-v3": _LLAMA3_SPLIT, "llama-bpe": _LLAMA3_SPLIT,
                        "smaug-bpe": _LLAMA3_SPLIT, "qwen2": _QWEN2_SPLIT, "deepseek-r1-qwen": _QWEN2_SPLIT}


def _special_token(metadata, key):
    tokens = metadata["tokenizer.ggml.tokens"]
    i = metadata.get(f"tokenizer.ggml.{key}")
    return tokens[i] if i is not None and 0 <= i < len(tokens) else None


def tokenizer_from_gguf_metadata(metadata, source="the GGUF file"):
    """-> (tokenizers.Tokenizer, settings {bos_token, eos_token, unk_token, pad_token, chat_template, ...})."""
    kind = metadata.get("tokenizer.ggml.model")
    if "tokenizer.ggml.tokens" not in metadata:
        raise ValueError(f"{source} has no tokenizer in its metadata (no tokenizer.ggml.tokens).")
    if kind != "gpt2":
        raise NotImplementedError(
            f"{source} describes a {kind!r} tokenizer; tinypeft builds byte-level BPE ('gpt2') tokenizers from "
            "GGUF metadata only. Save the tokenizer with transformers (AutoTokenizer.from_pretrained(dir, "
            "gguf_file=...).save_pretrained(dir)) and load that folder instead."
        )
    tokens = metadata["tokenizer.ggml.tokens"]
    types = metadata.get("tokenizer.ggml.token_type") or [1] * len(tokens)
    merges = metadata.get("tokenizer.ggml.merges")
    if merges is None:
        raise ValueError(f"{source}: a byte-level BPE tokenizer without tokenizer.ggml.merges cannot be rebuilt.")

    spelling = bytes_to_unicode()
    alphabet = set(spelling.values())
    # llama.cpp writes a few tokens as raw text; a BPE vocabulary spells every token in the byte alphabet
    vocab = {}
    for i, t in enumerate(tokens):
        vocab[t if set(t) <= alphabet else "".join(spelling[b] for b in t.encode("utf-8"))] = i
    bpe = models.BPE(vocab=vocab, merges=[tuple(m.split(" ", 1)) for m in merges], dropout=None,
                     continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False, byte_fallback=False)
    tok = Tokenizer(bpe)
    split = PRE_TOKENIZER_SPLITS.get(metadata.get("tokenizer.ggml.pre"))
    if split is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(split), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    # control tokens match whole in the text and are special; a "control" token spelled outside the byte
    # alphabet is a converter's mislabel and is left out, as transformers does
    control = [AddedToken(t, normalized=False, special=True)
               for t, ty in zip(tokens, types) if ty == CONTROL and set(t) <= alphabet]
    tok.add_special_tokens(control)
    user = [AddedToken(t, normalized=False, special=False)
            for t, ty in zip(tokens, types) if ty == USER_DEFINED and t in vocab]
    if user:
        tok.add_tokens(user)

    settings = {name: _special_token(metadata, key) for name, key in
                (("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"),
                 ("unk_token", "unknown_token_id"), ("pad_token", "padding_token_id"))}
    add_bos = bool(metadata.get("tokenizer.ggml.add_bos_token", False))
    add_eos = bool(metadata.get("tokenizer.ggml.add_eos_token", False))
    single, specials = ["$A:0"], []
    if add_bos and settings["bos_token"]:
        single.insert(0, settings["bos_token"] + ":0")
        specials.append((settings["bos_token"], vocab_id(tok, settings["bos_token"])))
    if add_eos and settings["eos_token"]:
        single.append(settings["eos_token"] + ":0")
        specials.append((settings["eos_token"], vocab_id(tok, settings["eos_token"])))
    pair = single + [s.replace(":0", ":1").replace("$A", "$B") for s in single]
    tok.post_processor = processors.TemplateProcessing(single=" ".join(single), pair=" ".join(pair),
                                                       special_tokens=specials)
    settings["init_config"] = {"add_bos_token": add_bos, "add_eos_token": add_eos}
    if metadata.get("tokenizer.chat_template"):
        settings["init_config"]["chat_template"] = metadata["tokenizer.chat_template"]
    return tok, settings


def vocab_id(tok, token):
    i = tok.token_to_id(token)
    if i is None:
        raise ValueError(f"special token {token!r} is not in the vocabulary")
    return i
