"""One LoRA training step on GPT-2 small, tinypeft against peft + transformers + PyTorch in the same run.

    python bench/train.py                  # both frameworks, 2 threads, 3 rounds of 5 timed steps (2 warm-up)
    python bench/train.py --steps 3 --threads 1 --rounds 5

The step: GPT-2 small shape (124M parameters, random weights), LoRA r=8 (alpha 16, dropout 0.05) on
c_attn, batch 4 x 128 tokens, loss on the next token, backward, AdamW on the LoRA weights. The model is in
train mode in both (GPT-2's dropouts on).

Each framework runs in its own subprocess, so peak resident memory is its own and comparable:
  - "RSS built"  resident memory once the model, the adapter, the optimizer and the batch exist
  - "peak RSS"   the most resident memory the process reached during the steps (Linux resets the
                 high-water mark after the build via /proc/self/clear_refs; elsewhere it is the lifetime peak)
  - "step peak"  peak RSS minus RSS built: what the training step itself needs
The step time is the median of the timed steps; each round is a fresh process per framework, the order
alternating, and the table gives the median [min, max] over rounds. The bars of the issue: tinypeft's
step no slower than torch's, and its peak RSS at most 0.7x torch's. "of limit" is bench/limits.py's floor
for the step over the measured time. The load average is printed with each round: the machine may be
shared, so compare figures taken at a low load.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH, SEQ, R, ALPHA, DROPOUT, LR = 4, 128, 8, 16, 0.05, 1e-4


def rss_mb():
    """Current resident set size in MiB (Linux /proc; elsewhere the peak, which is the best we have)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_rss_mb()


def reset_peak():
    """Make the peak-RSS counter start again from the current RSS (Linux >= 4.0); False when it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def tinypeft_step(threads):
    import numpy as np

    import tinypeft
    from tinypeft.backend import cmatmul
    from tinypeft.models.gpt2 import GPT2Config, GPT2LMHeadModel

    if cmatmul.available():
        cmatmul.set_num_threads(threads)
    tinypeft.manual_seed(0)
    model = GPT2LMHeadModel.from_config(GPT2Config())
    model = tinypeft.get_peft_model(model, tinypeft.LoraConfig(
        r=R, lora_alpha=ALPHA, lora_dropout=DROPOUT, target_modules=["c_attn"], fan_in_fan_out=True,
        task_type="CAUSAL_LM"))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = tinypeft.optim.AdamW(params, lr=LR)
    ids = tinypeft.tensor(np.random.default_rng(0).integers(0, 50257, size=(BATCH, SEQ)))

    def step():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        return float(loss.item())

    return step, sum(p.numel() for p in params)


def torch_step(threads):
    import numpy as np
    import peft
    import torch
    import transformers

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config())
    model = peft.get_peft_model(model, peft.LoraConfig(
        r=R, lora_alpha=ALPHA, lora_dropout=DROPOUT, target_modules=["c_attn"], fan_in_fan_out=True,
        task_type="CAUSAL_LM"))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR)
    ids = torch.from_numpy(np.random.default_rng(0).integers(0, 50257, size=(BATCH, SEQ)))

    def step():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        return float(loss.item())

    return step, sum(p.numel() for p in params)


def worker(framework, threads, steps, warmup):
    """Runs in the subprocess: build, measure, print one JSON line."""
    make = tinypeft_step if framework == "tinypeft" else torch_step
    step, trainable = make(threads)
    built = rss_mb()
    exact_peak = reset_peak()
    losses, times = [], []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        losses.append(step())
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    print(json.dumps({
        "framework": framework, "step_s": statistics.median(times), "times": times, "losses": losses,
        "rss_built_mb": built, "peak_rss_mb": peak_rss_mb(), "exact_peak": exact_peak, "trainable": trainable,
    }))


def run_worker(framework, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", framework, "--threads", str(args.threads),
           "--steps", str(args.steps), "--warmup", str(args.warmup)]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    load = os.getloadavg()[0]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        print(f"{framework}: failed (exit {proc.returncode})\n{proc.stderr[-3000:]}")
        return None
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["load"] = load
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="processes per framework, alternating which goes first")
    parser.add_argument("--only", choices=["tinypeft", "torch"])
    parser.add_argument("--worker", choices=["tinypeft", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.threads, args.steps, args.warmup)

    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
    frameworks = [args.only] if args.only else ["tinypeft"] + (["torch"] if have_torch else [])
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import limits

    machine = limits.measure(args.threads)
    floor = limits.floors(machine)["gpt2_lora_step_4x128"]
    print(f"GPT-2 small, LoRA r={R} on c_attn, AdamW, batch {BATCH} x {SEQ}, {args.threads} threads, "
          f"median of {args.steps} steps after {args.warmup} warm-up, {args.rounds} rounds (one process each, "
          f"alternating); floor {floor:.3f} s from peak {machine['peak_gflops_core']:.1f} GFLOP/s a core")
    if not have_torch and not args.only:
        print("(torch, transformers or peft not installed: tinypeft only)")
    runs = {f: [] for f in frameworks}
    for r in range(args.rounds):
        for f in (frameworks if r % 2 == 0 else frameworks[::-1]):
            res = run_worker(f, args)
            if res is not None:
                runs[f].append(res)
                print(f"  round {r + 1} {f:9s} step {res['step_s']:.3f} s  peak RSS {res['peak_rss_mb']:.0f} MB  "
                      f"load {res['load']:.2f}", flush=True)

    def spread(values, spec):
        return f"{statistics.median(values):{spec}} [{min(values):{spec}}, {max(values):{spec}}]"

    print(f"\nmedian [min, max] over rounds; load average now {os.getloadavg()[0]:.2f}")
    print(f"{'framework':<10} {'step s':>24} {'peak RSS MB':>20} {'step peak MB':>13} {'of limit':>9} "
          f"{'trainable':>10}  first loss")
    med = {}
    for f, rs in runs.items():
        if not rs:
            continue
        steps, peaks = [x["step_s"] for x in rs], [x["peak_rss_mb"] for x in rs]
        med[f] = (statistics.median(steps), statistics.median(peaks),
                  statistics.median([x["peak_rss_mb"] - x["rss_built_mb"] for x in rs]))
        print(f"{f:<10} {spread(steps, '.3f'):>24} {spread(peaks, '.0f'):>20} {med[f][2]:>13.0f} "
              f"{floor / med[f][0]:>9.2f} {rs[0]['trainable']:>10,}  {rs[0]['losses'][0]:.4f}")
    if "tinypeft" in med and "torch" in med:
        t = med["tinypeft"][0] / med["torch"][0]
        m = med["tinypeft"][1] / med["torch"][1]
        dm = med["tinypeft"][2] / med["torch"][2]
        print(f"\ntinypeft / torch: step time {t:.2f}x (bar <= 1.0: {'met' if t <= 1.0 else 'NOT met'}), "
              f"peak RSS {m:.2f}x (bar <= 0.7: {'met' if m <= 0.7 else 'NOT met'}), step peak {dm:.2f}x")
    print("of limit: the floor (bench/limits.py: the step's FLOPs / measured peak) over the median step time")


if __name__ == "__main__":
    main()
