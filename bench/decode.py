"""Per-token cost of generate(): the module path against fast_decode's plain-NumPy step, and what is overhead.

    python bench/decode.py                       # tiny fixture, GPT-2 124M shape, SmolLM2-135M shape
    python bench/decode.py --models tiny --new-tokens 128

For each model (random weights; the arithmetic, not the text, is what is timed): greedy generation of
--new-tokens tokens after a 16-token prompt, batch 1, KV cache on, median of --repeats runs, in ms per
new token, once down the module path (each token through the modules) and once down the fast path.
"floor" is the time of the weight products alone for one token (every projection and the LM head as one
[1, in] @ [in, out] product each, through the same backend.matmul); "overhead" is a path's time per
token minus that floor: attention, norms, sampling, Python. On the tiny fixture almost all of it is overhead.
"""
import argparse
import os
import statistics
import time

import numpy as np

import tinypeft.models.generation as generation
from tinypeft import backend
from tinypeft.backend import cmatmul
from tinypeft.models import AutoModelForCausalLM
from tinypeft.models.gpt2 import GPT2Config, GPT2LMHeadModel
from tinypeft.models.llama import LlamaConfig, LlamaForCausalLM

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "models", "gpt2")


def build(name):
    if name == "tiny":
        return AutoModelForCausalLM.from_pretrained(FIXTURE)
    if name == "gpt2":  # GPT-2 small: 12 layers, 768 wide, 50257 tokens (124M)
        model = GPT2LMHeadModel.from_config(GPT2Config())
    elif name == "smollm2":  # SmolLM2-135M: 30 layers, 576 wide, 9 heads / 3 key-value heads, 49152 tokens
        model = LlamaForCausalLM.from_config(LlamaConfig(
            vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
            num_key_value_heads=3, max_position_embeddings=8192, rope_theta=100000.0, tie_word_embeddings=True,
            rms_norm_eps=1e-5))
    else:
        raise SystemExit(f"unknown model {name!r}: choose tiny, gpt2, smollm2")
    return model.eval()


def per_token_ms(model, new_tokens, repeats, fast):
    original = generation.fast_decoder
    if not fast:
        generation.fast_decoder = lambda m: None
    try:
        ids = np.random.default_rng(0).integers(2, model.config.vocab_size, (1, 16))
        kw = dict(input_ids=ids, eos_token_id=[], max_new_tokens=new_tokens)
        model.generate(input_ids=ids, eos_token_id=[], max_new_tokens=2)  # warm up
        prefill = _median_time(lambda: model.generate(input_ids=ids, eos_token_id=[], max_new_tokens=1), repeats)
        total = _median_time(lambda: model.generate(**kw), repeats)
        return (total - prefill) / (new_tokens - 1) * 1e3  # the prompt's forward is not a decoding step
    finally:
        generation.fast_decoder = original


def floor_ms(model, repeats):
    """The weight products of one token: every 2-D weight (projections, LM head) times a [1, in] row."""
    mats = []
    for name, p in model.named_parameters():
        w = p.data
        if w.ndim == 2 and "wte" not in name and "wpe" not in name and "embed_tokens" not in name:
            mats.append(w if "c_" in name.rsplit(".", 2)[-2] else w.T)  # Conv1D stores [in, out]
    if getattr(model.config, "tie_word_embeddings", False):
        mats.append(model.get_input_embeddings().weight.data.T)
    xs = [np.ones((1, w.shape[0]), np.float32) for w in mats]

    def run():
        for x, w in zip(xs, mats):
            backend.matmul(x, w)

    run()
    return _median_time(run, repeats * 5) * 1e3


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="tiny,gpt2,smollm2")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"threads: {cmatmul.get_num_threads()}, load average: {os.getloadavg()[0]:.2f}; "
          f"{args.new_tokens} new tokens after 16, batch 1, greedy, median of {args.repeats}")
    print(f"{'model':10s} {'params':>8s} {'floor':>8s} {'modules':>9s} {'fast':>8s} {'overhead':>18s} {'speed-up':>9s}")
    for name in args.models.split(","):
        model = build(name)
        params = sum(p.data.size for p in model.parameters()) / 1e6
        new = min(args.new_tokens, model.config.max_position_embeddings - 16)  # the tiny fixture has 64 positions
        floor = floor_ms(model, args.repeats)
        slow = per_token_ms(model, new, args.repeats, fast=False)
        fast = per_token_ms(model, new, args.repeats, fast=True)
        print(f"{name:10s} {params:7.1f}M {floor:7.2f}ms {slow:8.2f}ms {fast:7.2f}ms "
              f"{slow - floor:7.2f} -> {fast - floor:5.2f}ms {slow / fast:8.2f}x")
        del model


if __name__ == "__main__":
    main()
