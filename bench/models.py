"""Whole models, tinypeft against transformers + PyTorch measured in the same run.

    python bench/models.py                   # all three: GPT-2 forward, GPT-2 generation, MiniLM embeddings
    python bench/models.py --only forward --threads 1

  forward    GPT-2 small shape (124M, random weights), batch 1 x 128 tokens, logits, no graph
  generate   the same model, 16-token prompt, 64 new tokens, greedy, KV cache: tokens per second
  minilm     all-MiniLM-L6-v2 sentence embeddings (mean pooling, L2 norm) of 32 sentences

Both frameworks get the same weights (ours are copied into torch's model) and the same thread count
(torch.set_num_threads, and our C matmul's). The torch columns are left empty when torch or transformers
is missing. The machine's load average is printed: on a shared machine, compare figures taken at a low load.
"""
import argparse
import os
import statistics
import time

import numpy as np

import tinypeft
from tinypeft.backend import cmatmul

try:
    import torch
    import transformers
except ImportError:  # the tinypeft columns still run
    torch = transformers = None

SENTENCES = [
    "The cat sits outside.", "A man is playing guitar.", "I love pasta.", "The new movie is awesome.",
    "The cat plays in the garden.", "A woman watches TV.", "The new movie is so great.", "Do you like pizza?",
    "Stocks fell sharply on Monday after the central bank raised interest rates again.",
    "She walked along the beach at sunset, listening to the waves.",
    "Quantum computers use qubits that can be in superpositions of states.",
    "The recipe calls for two cups of flour, one egg and a pinch of salt.",
]
SENTENCES = [SENTENCES[i % len(SENTENCES)] + ("" if i < len(SENTENCES) else f" ({i})") for i in range(32)]


def median_seconds(fn, repeats=5, warmup=1):
    """Median wall time of `repeats` calls after `warmup` calls (page faults, thread start, caches)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def load():
    return os.getloadavg()[0]


def ratio(ours, theirs):
    return "" if theirs is None else f"{ours / theirs:.2f}"


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


# ------------------------------------------------------------------------------------------------ GPT-2
def gpt2_pair():
    """tinypeft's GPT-2 small with random weights, and transformers' with the very same weights (or None)."""
    from tinypeft.models.gpt2 import GPT2Config, GPT2LMHeadModel

    tinypeft.manual_seed(0)
    ours = GPT2LMHeadModel.from_config(GPT2Config()).eval()
    theirs = None
    if torch is not None:
        theirs = transformers.GPT2LMHeadModel(transformers.GPT2Config()).eval()
        state = {k: torch.from_numpy(np.ascontiguousarray(v.data)) for k, v in ours.state_dict().items()}
        theirs.load_state_dict(state, strict=False)
    return ours, theirs


def bench_forward(ours, theirs, repeats):
    ids = np.random.default_rng(0).integers(0, 50257, size=(1, 128))
    with tinypeft.no_grad():
        t_ours = median_seconds(lambda: ours(input_ids=tinypeft.tensor(ids)), repeats)
        logits = ours(input_ids=tinypeft.tensor(ids)).logits.data
    t_theirs = diff = None
    if theirs is not None:
        tids = torch.from_numpy(ids)
        with torch.no_grad():
            t_theirs = median_seconds(lambda: theirs(input_ids=tids), repeats)
            diff = float(np.abs(theirs(input_ids=tids).logits.numpy() - logits).max())
    return t_ours, t_theirs, diff


def bench_generate(ours, theirs, repeats, new_tokens=64, prompt=16):
    ids = np.random.default_rng(1).integers(0, 50257, size=(1, prompt))
    out = {}
    # eos off in both, so each run makes exactly `new_tokens` tokens
    run = lambda: ours.generate(tinypeft.tensor(ids), max_new_tokens=new_tokens, eos_token_id=[])  # noqa: E731
    t_ours = median_seconds(run, repeats)
    out["ours"] = run().data
    t_theirs, same = None, None
    if theirs is not None:
        tids = torch.from_numpy(ids)

        def run_theirs():
            with torch.no_grad():
                return theirs.generate(tids, attention_mask=torch.ones_like(tids), max_new_tokens=new_tokens,
                                       min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)

        t_theirs = median_seconds(run_theirs, repeats)
        same = bool(np.array_equal(run_theirs().numpy(), out["ours"]))
    return new_tokens / t_ours, (None if t_theirs is None else new_tokens / t_theirs), same


# ----------------------------------------------------------------------------------------------- MiniLM
def bench_minilm(repeats):
    from tinypeft.models.pooling import sentence_embeddings

    path = tinypeft.hub.fetch_minilm()
    tok = tinypeft.AutoTokenizer.from_pretrained(str(path))
    model = tinypeft.AutoModel.from_pretrained(str(path)).eval()
    batch = tok(SENTENCES, padding=True, return_tensors="np")
    ids, mask = np.asarray(batch["input_ids"]), np.asarray(batch["attention_mask"])
    tt = batch.get("token_type_ids")

    def run_ours():
        with tinypeft.no_grad():
            return sentence_embeddings(model, tinypeft.tensor(ids), tinypeft.tensor(mask),
                                       None if tt is None else tinypeft.tensor(np.asarray(tt)))

    t_ours = median_seconds(run_ours, repeats)
    emb = run_ours().data
    t_theirs = diff = None
    if torch is not None:
        tmodel = transformers.AutoModel.from_pretrained(str(path)).eval()
        tb = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
        if tt is not None:
            tb["token_type_ids"] = torch.from_numpy(np.asarray(tt))

        def run_theirs():
            with torch.no_grad():
                h = tmodel(**tb).last_hidden_state
                m = tb["attention_mask"][..., None].to(h.dtype)
                e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(e, p=2, dim=-1)

        t_theirs = median_seconds(run_theirs, repeats)
        diff = float(np.abs(run_theirs().numpy() - emb).max())
    return t_ours, t_theirs, diff, ids.shape


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=cmatmul.get_num_threads() if cmatmul.available() else 1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=["forward", "generate", "minilm"], nargs="+")
    args = parser.parse_args()
    todo = args.only or ["forward", "generate", "minilm"]
    if cmatmul.available():
        cmatmul.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    versions = f"torch {torch.__version__}, transformers {transformers.__version__}" if torch else "torch: not installed"
    print(f"tinypeft matmul={tinypeft.backend_info()['matmul']} threads={args.threads}; numpy {np.__version__}; {versions}")

    rows = []
    if "forward" in todo or "generate" in todo:
        ours, theirs = gpt2_pair()
        if "forward" in todo:
            la = load()
            t, tt, diff = bench_forward(ours, theirs, args.repeats)
            rows.append(("GPT-2 124M forward 1x128 (ms)", t * 1e3, None if tt is None else tt * 1e3,
                         ratio(t, tt), f"max |logit diff| {fmt(diff, '.1e')}", la))
        if "generate" in todo:
            la = load()
            r, rt, same = bench_generate(ours, theirs, max(1, args.repeats // 2))
            rows.append(("GPT-2 generate 16+64 greedy (tok/s)", r, rt, ratio(rt, r) if rt else "",
                         f"same tokens: {same}", la))
        del ours, theirs
    if "minilm" in todo:
        la = load()
        t, tt, diff, shape = bench_minilm(args.repeats)
        rows.append((f"MiniLM-L6 embed {shape[0]}x{shape[1]} (ms)", t * 1e3, None if tt is None else tt * 1e3,
                     ratio(t, tt), f"max |emb diff| {fmt(diff, '.1e')}", la))

    print(f"\n{'benchmark':<38} {'tinypeft':>10} {'torch':>10} {'ratio':>6}  {'load':>5}  check")
    for name, a, b, r, check, la in rows:
        print(f"{name:<38} {a:>10.1f} {fmt(b, '>10.1f')} {r:>6}  {la:>5.2f}  {check}")
    print("\nratio = tinypeft time / torch time (1.0 = as fast as torch; above 1 = slower); "
          "load = 1-minute load average when the row started")


if __name__ == "__main__":
    main()
