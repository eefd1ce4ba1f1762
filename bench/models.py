"""Whole models, tinypeft against transformers + PyTorch: each framework in its own process, alternating.

    python bench/models.py                               # every workload, 3 rounds, 2 threads
    python bench/models.py --only forward generate --rounds 5 --threads 1

  forward   GPT-2 124M (the real config, random weights), batch 1 x 128 tokens, logits, no graph: ms
  generate  the same model, 16-token prompt, 64 new tokens, greedy, KV cache: tokens/s
  minilm    the real all-MiniLM-L6-v2, embeddings (mean pooling, L2 norm) of 32 sentences: ms
  smollm2   the real SmolLM2-135M-Instruct in float32, a chat prompt, 48 new tokens: tokens/s
            (bench/smollm2.py's worker; that script also reports load and forward times)

The GPT-2 weights are made once by transformers in a torch process and saved to a temporary folder, which
both frameworks load. Each (framework, workload) measurement is a fresh process, so neither inherits the
other's threads (PyTorch's OpenMP threads keep spinning after a call and take a core from whatever runs
next) or caches; in each round the order of the two alternates. The table gives the median [min, max] over
rounds, the ratio to torch, and the fraction of the floor bench/limits.py derives from the measured peak
FLOP/s and memory bandwidth (1.0 = the machine's limit). On a shared machine the load average is printed:
compare figures taken at a low load.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout's tinypeft, not an installed one
sys.path.insert(0, str(HERE))

SENTENCES = [
    "The cat sits outside.", "A man is playing guitar.", "I love pasta.", "The new movie is awesome.",
    "The cat plays in the garden.", "A woman watches TV.", "The new movie is so great.", "Do you like pizza?",
    "Stocks fell sharply on Monday after the central bank raised interest rates again.",
    "She walked along the beach at sunset, listening to the waves.",
    "Quantum computers use qubits that can be in superpositions of states.",
    "The recipe calls for two cups of flour, one egg and a pinch of salt.",
]
SENTENCES = [SENTENCES[i % len(SENTENCES)] + ("" if i < len(SENTENCES) else f" ({i})") for i in range(32)]
WORKLOADS = {  # name: (unit, whether higher is better, its key in limits.floors)
    "forward": ("ms", False, "gpt2_forward_1x128"),
    "generate": ("tok/s", True, "gpt2_decode_token"),
    "minilm": ("ms", False, "minilm_32"),
    "smollm2": ("tok/s", True, "smollm2_decode_token"),
}


def median_of(fn, repeats):
    fn()  # warm-up: page faults, thread start, caches
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# ---- workers: each runs in its own process and prints one JSON line ---------------------------------------

def save_gpt2(folder):
    """Runs in a torch process: a random-weight GPT-2 of the real config, saved as a Hugging Face folder."""
    import torch
    import transformers

    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(transformers.GPT2Config()).save_pretrained(folder)


def tinypeft_worker(workload, folder, repeats):
    import tinypeft
    from tinypeft.backend import cmatmul  # noqa: F401 (threads set by the caller through set_num_threads)

    if workload in ("forward", "generate"):
        model = tinypeft.AutoModelForCausalLM.from_pretrained(folder).eval()
        if workload == "forward":
            ids = tinypeft.tensor(np.random.default_rng(0).integers(0, 50257, (1, 128)))
            with tinypeft.no_grad():
                sec = median_of(lambda: model(input_ids=ids), repeats)
                check = model(input_ids=ids).logits.data[0, -1, :8].tolist()
            return {"value": sec * 1e3, "check": check}
        ids = tinypeft.tensor(np.random.default_rng(1).integers(0, 50257, (1, 16)))
        run = lambda: model.generate(ids, max_new_tokens=64, eos_token_id=[])  # noqa: E731
        sec = median_of(run, max(1, repeats // 2))
        return {"value": 64 / sec, "check": np.asarray(run().data)[0, -64:].tolist()}
    if workload == "minilm":
        from tinypeft.models.pooling import sentence_embeddings

        path = tinypeft.hub.fetch_minilm()
        tok = tinypeft.AutoTokenizer.from_pretrained(str(path))
        model = tinypeft.AutoModel.from_pretrained(str(path)).eval()
        batch = tok(SENTENCES, padding=True, return_tensors="np")
        args = [tinypeft.tensor(np.asarray(batch[k])) for k in ("input_ids", "attention_mask")]
        tt = batch.get("token_type_ids")

        def run():
            with tinypeft.no_grad():
                return sentence_embeddings(model, *args, None if tt is None else tinypeft.tensor(np.asarray(tt)))

        sec = median_of(run, repeats)
        return {"value": sec * 1e3, "check": run().data[0, :8].tolist(), "shape": list(batch["input_ids"].shape)}
    raise ValueError(workload)


def torch_worker(workload, folder, repeats):
    import torch
    import transformers

    if workload in ("forward", "generate"):
        model = transformers.GPT2LMHeadModel.from_pretrained(folder).eval()
        if workload == "forward":
            ids = torch.from_numpy(np.random.default_rng(0).integers(0, 50257, (1, 128)))
            with torch.no_grad():
                sec = median_of(lambda: model(input_ids=ids), repeats)
                check = model(input_ids=ids).logits[0, -1, :8].tolist()
            return {"value": sec * 1e3, "check": check}
        ids = torch.from_numpy(np.random.default_rng(1).integers(0, 50257, (1, 16)))

        def run():
            with torch.no_grad():
                return model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=64, min_new_tokens=64,
                                      do_sample=False, pad_token_id=0)

        sec = median_of(run, max(1, repeats // 2))
        return {"value": 64 / sec, "check": run()[0, -64:].tolist()}
    if workload == "minilm":
        import tinypeft.hub

        path = str(tinypeft.hub.fetch_minilm())
        tok = transformers.AutoTokenizer.from_pretrained(path)
        model = transformers.AutoModel.from_pretrained(path).eval()
        batch = tok(SENTENCES, padding=True, return_tensors="pt")

        def run():
            with torch.no_grad():
                h = model(**batch).last_hidden_state
                m = batch["attention_mask"][..., None].to(h.dtype)
                e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(e, p=2, dim=-1)

        sec = median_of(run, repeats)
        return {"value": sec * 1e3, "check": run()[0, :8].tolist(), "shape": list(batch["input_ids"].shape)}
    raise ValueError(workload)


def worker(framework, workload, folder, threads, repeats):
    if framework == "tinypeft":
        from tinypeft.backend import cmatmul

        if cmatmul.available():
            cmatmul.set_num_threads(threads)
        out = tinypeft_worker(workload, folder, repeats)
    else:
        import torch

        torch.set_num_threads(threads)
        out = torch_worker(workload, folder, repeats)
    print(json.dumps(out))


# ---- the driver ---------------------------------------------------------------------------------------------

def spawn(args, env):
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_once(framework, workload, folder, args, env):
    if workload == "smollm2":  # bench/smollm2.py's worker: load, forward and generate in one process
        out = spawn([str(HERE / "smollm2.py"), "--worker", "transformers" if framework == "torch" else "tinypeft",
                     "--threads", str(args.threads), "--repeats", "2"], env)
        return {"value": out["generate_tok_s"], "check": None}
    return spawn([__file__, "--worker", framework, "--workload", workload, "--dir", folder,
                  "--threads", str(args.threads), "--repeats", str(args.repeats)], env)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5, help="timed runs inside each process (generation: half)")
    ap.add_argument("--only", choices=list(WORKLOADS), nargs="+")
    ap.add_argument("--no-torch", action="store_true", help="tinypeft only")
    ap.add_argument("--worker", choices=["tinypeft", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--workload", choices=list(WORKLOADS), help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.workload, args.dir, args.threads, args.repeats)

    import limits

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    frameworks = ["tinypeft"] if args.no_torch else ["tinypeft", "torch"]
    todo = args.only or list(WORKLOADS)
    machine = limits.measure(args.threads)
    floor = limits.floors(machine)
    print(f"threads {args.threads}, rounds {args.rounds}; load average {machine['load']:.2f}; peak "
          f"{machine['peak_gflops_core']:.1f} GFLOP/s a core, triad {machine['triad_gbs']:.1f} GB/s", flush=True)
    results = {(w, f): [] for w in todo for f in frameworks}
    checks = {}
    with tempfile.TemporaryDirectory() as folder:
        if {"forward", "generate"} & set(todo):
            if args.no_torch:
                raise SystemExit("the GPT-2 workloads need torch to make the weights; use --only minilm with --no-torch")
            spawn(["-c", f"import sys; sys.path.insert(0, {str(HERE)!r}); import models; models.save_gpt2({folder!r}); print('{{}}')"], env)
        for r in range(args.rounds):
            for w in todo:
                for f in (frameworks if r % 2 == 0 else frameworks[::-1]):
                    out = measure_once(f, w, folder, args, env)
                    results[w, f].append(out["value"])
                    checks.setdefault(w, {})[f] = out.get("check")
                    print(f"  round {r + 1} {w:9s} {f:9s} {out['value']:9.2f}  load {os.getloadavg()[0]:.2f}", flush=True)

    print(f"\nmedian [min, max] over {args.rounds} rounds; load average now {os.getloadavg()[0]:.2f}")
    print(f"{'workload':10s} {'unit':6s} {'tinypeft':>26s} {'torch':>26s} {'vs torch':>9s} {'floor':>9s} "
          f"{'of limit':>9s} {'torch of limit':>14s}  check")
    for w in todo:
        unit, higher, key = WORKLOADS[w]
        best = floor[key] * 1e3 if unit == "ms" else 1 / floor[key]  # the floor in the table's unit
        cells, med = [], {}
        for f in ("tinypeft", "torch"):
            v = results.get((w, f))
            if v:
                med[f] = statistics.median(v)
                cells.append(f"{med[f]:9.2f} [{min(v):7.2f}, {max(v):7.2f}]")
            else:
                cells.append("-")
        frac = {f: (med[f] / best if higher else best / med[f]) for f in med}
        vs = (med["tinypeft"] / med["torch"]) if "torch" in med else None
        note = ""
        c = checks.get(w, {})
        if c.get("tinypeft") is not None and c.get("torch") is not None:
            note = f"max |diff| {np.abs(np.subtract(c['tinypeft'], c['torch'], dtype=float)).max():.1e}"
        print(f"{w:10s} {unit:6s} {cells[0]:>26s} {cells[1]:>26s} "
              f"{'-' if vs is None else format(vs, '.2f') + 'x':>9s} {best:9.2f} {frac['tinypeft']:9.2f} "
              f"{format(frac['torch'], '.2f') if 'torch' in frac else '-':>14s}  {note}")
    print("\nvs torch: tinypeft's value / torch's (ms: below 1 is faster; tok/s: above 1 is faster). floor: the best "
          "possible value from bench/limits.py; of limit: the fraction of it reached (1.0 = the machine's limit).")


if __name__ == "__main__":
    sys.exit(main())
