"""SmolLM2-135M-Instruct from its GGUF file: tinypeft against transformers + PyTorch on the same weights.

    python bench/smollm2.py                      # 3 rounds, 2 threads
    python bench/smollm2.py --rounds 5 --threads 1

  load       from_pretrained(dir, gguf_file=...) to a float32 model, and the tokenizer, in seconds
  forward    one forward pass of 1 x 128 tokens (logits, no graph), in ms
  generate   a chat prompt, 48 new tokens, greedy, KV cache, end-of-sequence off: tokens per second

Both load the same file and dequantize it to the same float32 weights (tests/test_gguf_parity.py checks
they are equal). Each measurement runs in a fresh process, one framework at a time, alternating which
goes first in each round, so neither inherits the other's caches or threads; the table gives the median
over rounds with the min and max. The load average is printed: on a shared machine, compare figures
taken at a low load.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's tinypeft, not an installed one

CHAT = [{"role": "user", "content": "Write a short story about a robot who learns to paint."}]


def worker(framework, threads, repeats):
    """Runs in its own process: load, forward 1 x 128, generate 48 tokens; prints one JSON line."""
    from tinypeft.hub import SMOLLM2_GGUF, fetch_smollm2

    d = fetch_smollm2()
    ids = np.random.default_rng(0).integers(0, 49152, (1, 128))
    out = {}
    if framework == "tinypeft":
        from tinypeft import AutoModelForCausalLM, AutoTokenizer, no_grad
        from tinypeft.backend import cmatmul

        if cmatmul.available():
            cmatmul.set_num_threads(threads)
        t0 = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(d, gguf_file=SMOLLM2_GGUF)
        tok = AutoTokenizer.from_pretrained(d, gguf_file=SMOLLM2_GGUF)
        out["load_s"] = time.perf_counter() - t0
        prompt = tok.apply_chat_template(CHAT, add_generation_prompt=True, return_tensors="np")["input_ids"]

        def forward():
            with no_grad():
                model(input_ids=ids)

        def generate():
            return model.generate(prompt, max_new_tokens=48, eos_token_id=[]).shape[1] - prompt.shape[1]
    else:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(d, gguf_file=SMOLLM2_GGUF, dtype=torch.float32).eval()
        tok = AutoTokenizer.from_pretrained(d, gguf_file=SMOLLM2_GGUF)
        out["load_s"] = time.perf_counter() - t0
        prompt = tok.apply_chat_template(CHAT, add_generation_prompt=True, return_tensors="pt")["input_ids"]
        model.generation_config.eos_token_id = None
        config = GenerationConfig(max_new_tokens=48, do_sample=False, eos_token_id=None, pad_token_id=2)
        tids = torch.from_numpy(ids)

        def forward():
            with torch.no_grad():
                model(tids)

        def generate():
            with torch.no_grad():
                return model.generate(prompt, attention_mask=torch.ones_like(prompt),
                                      generation_config=config).shape[1] - prompt.shape[1]
    forward()  # warm-up: page faults, thread start
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        forward()
        times.append(time.perf_counter() - t0)
    out["forward_ms"] = 1000 * statistics.median(times)
    generate()
    rates = []
    for _ in range(max(1, repeats // 2)):
        t0 = time.perf_counter()
        n = generate()
        rates.append(n / (time.perf_counter() - t0))
    out["generate_tok_s"] = statistics.median(rates)
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5, help="forward passes per process (generations: half)")
    p.add_argument("--only", choices=["tinypeft", "transformers"], default=None)
    p.add_argument("--worker", choices=["tinypeft", "transformers"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.worker, args.threads, args.repeats)
        return 0
    frameworks = [args.only] if args.only else ["tinypeft", "transformers"]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads))
    results = {f: [] for f in frameworks}
    print(f"threads={args.threads}, rounds={args.rounds}, load average {os.getloadavg()[0]:.1f}", flush=True)
    for r in range(args.rounds):
        for f in (frameworks if r % 2 == 0 else frameworks[::-1]):
            proc = subprocess.run([sys.executable, __file__, "--worker", f, "--threads", str(args.threads),
                                   "--repeats", str(args.repeats)], capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                print(f"{f} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
                return 1
            results[f].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"  round {r + 1} {f:12s} {results[f][-1]}", flush=True)
    print(f"\nmedian [min, max] over {args.rounds} rounds (load average now {os.getloadavg()[0]:.1f})")
    print(f"{'':14s}{'load s':>22s}{'forward 1x128 ms':>26s}{'generate tok/s':>24s}")
    for f in frameworks:
        cells = []
        for key in ("load_s", "forward_ms", "generate_tok_s"):
            v = [x[key] for x in results[f]]
            cells.append(f"{statistics.median(v):8.2f} [{min(v):6.2f}, {max(v):6.2f}]")
        print(f"{f:14s}" + "".join(f"{c:>24s}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
