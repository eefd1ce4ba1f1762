"""QLoRA on a CPU: a LoRA step on SmolLM2-135M-Instruct in 4 bits, against torch + PEFT in float32 and against
tinypeft's own float32 step; then a 1.7B-parameter Llama in 4 bits with gradient checkpointing.

    python bench/quant.py --model /work/models/smollm2-f32        # the 135M table (three processes)
    python bench/quant.py --big                                   # the 1.7B row
    python bench/quant.py --model DIR --steps 3 --threads 2
    python bench/quant.py --rows tp-nf4 --gguf /path/to/SmolLM2-135M-Instruct.Q4_1.gguf   # tinypeft rows from GGUF
    python bench/quant.py --rows tp-f32,tp-gguf,tp-nf4                # GGUF's own Q4_1 blocks kept
    python bench/quant.py --decode                                    # 4-bit decoding, tokens/s

The 135M step: LoRA r=8 (alpha 16, dropout 0.05) on all linear layers, AdamW (lr 1e-3), batch 4 x 128 tokens
of English text (this repository's README, tokenized with the model's tokenizer), causal LM loss, one warm-up
step then --steps timed steps on the same batch (so the loss must fall). Rows:
  torch-f32   transformers + PEFT, float32 weights
  tp-f32      tinypeft, float32 weights
  tp-nf4      tinypeft, BitsAndBytesConfig(load_in_4bit, nf4, double quant), prepare_model_for_kbit_training
              (gradient checkpointing on), loaded from the float32 safetensors layer by layer
  tp-gguf     tinypeft, the GGUF file's Q4_1 blocks kept as they are (GGUFQuantizationConfig),
              prepare_model_for_kbit_training (gradient checkpointing on); tp-gguf-nockpt without checkpointing
  and, to show where the time goes: tp-f32-ckpt (float32 with gradient checkpointing) and tp-nf4-nockpt
  (4 bits without it; prepare_model_for_kbit_training(use_gradient_checkpointing=False)); tp-nf4-ckpt-half
  checkpoints every other decoder layer (layer.gradient_checkpointing = i % 2 == 0), trading memory for time
The 1.7B row: SmolLM2-1.7B's config (hidden 2048, 24 layers, 32 heads, 32 kv heads, intermediate 8192, vocab
49152, tied) built empty; each linear layer gets N(0, 0.02) values drawn one layer at a time and quantized as
they are assigned; LoRA r=8 on all linear layers, gradient checkpointing, one step at --big-batch x --big-seq.

--decode: greedy chat generation from SmolLM2's GGUF file (48 new tokens, KV cache, end-of-sequence off;
tokens/s, median [min, max] over --steps generations after one warm-up): dec-torch-f32 (transformers,
dequantized to float32), dec-tp-f32 (tinypeft, float32), dec-tp-gguf (tinypeft, Q4_1 blocks kept),
dec-tp-nf4 (tinypeft, re-quantized to NF4).

Each row runs in its own process. Figures: peak RSS = the process's VmHWM over its whole life (loading
included); step = median [min, max] of the timed steps (wall clock); CPU = median CPU seconds of a step, all
threads (less disturbed than the wall clock on a shared machine, but blind to idle threads); the losses.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's tinypeft, not an installed one
BATCH, SEQ, R, ALPHA, DROPOUT, LR = 4, 128, 8, 16, 0.05, 1e-3


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def batch_ids(model_dir):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    text = open(os.path.join(ROOT, "README.md")).read()
    ids = tok.encode(text).ids
    while len(ids) < BATCH * SEQ:
        ids = ids + ids
    import numpy as np

    return np.array(ids[: BATCH * SEQ], dtype=np.int64).reshape(BATCH, SEQ)


def run_torch(args):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=DROPOUT, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR)
    ids = torch.tensor(batch_ids(args.model))

    def step():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss.item()

    return timed(step, args.steps)


def gguf_path(args):
    if args.gguf:
        return args.gguf
    from tinypeft.hub import SMOLLM2_GGUF, fetch_smollm2

    return os.path.join(fetch_smollm2(), SMOLLM2_GGUF)


def tinypeft_model(args, quantized, checkpointing):
    import tinypeft as tp
    from tinypeft.backend import cmatmul

    cmatmul.set_num_threads(args.threads)
    tp.manual_seed(0)
    if quantized == "gguf":  # the file's Q4_1 blocks, kept
        path = gguf_path(args)
        model = tp.AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path),
                                                        quantization_config=tp.GGUFQuantizationConfig())
        model = tp.prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
    elif quantized:
        cfg = tp.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True)
        if args.gguf:  # each GGUF tensor dequantized from its blocks, then quantized to NF4
            model = tp.AutoModelForCausalLM.from_pretrained(os.path.dirname(args.gguf), quantization_config=cfg,
                                                            gguf_file=os.path.basename(args.gguf))
        else:
            model = tp.AutoModelForCausalLM.from_pretrained(args.model, quantization_config=cfg)
        model = tp.prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
    else:
        if args.gguf:
            model = tp.AutoModelForCausalLM.from_pretrained(os.path.dirname(args.gguf),
                                                            gguf_file=os.path.basename(args.gguf))
        else:
            model = tp.AutoModelForCausalLM.from_pretrained(args.model)
        if checkpointing:
            model.gradient_checkpointing_enable()
    return model


def tinypeft_step_fn(model, ids):
    import tinypeft as tp

    model = tp.get_peft_model(model, tp.LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=DROPOUT,
                                                   target_modules="all-linear", task_type="CAUSAL_LM"))
    model.train()
    opt = tp.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR)

    def step():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss.item()

    return step


def run_tinypeft(args, quantized, checkpointing, every=1):
    model = tinypeft_model(args, quantized, checkpointing)
    for i, layer in enumerate(model.model.layers):
        layer.gradient_checkpointing = checkpointing and i % every == 0
    return timed(tinypeft_step_fn(model, batch_ids(args.model)), args.steps)


def run_big(args):
    import numpy as np

    import tinypeft as tp
    from tinypeft.backend import cmatmul
    from tinypeft.quantization import BitsAndBytesConfig, replace_with_bnb_linear
    from tinypeft.quantization.loading import quantized_weight_bytes

    cmatmul.set_num_threads(args.threads)
    config = tp.AutoConfig.for_model("llama", vocab_size=49152, hidden_size=2048, intermediate_size=8192,
                                     num_hidden_layers=24, num_attention_heads=32, num_key_value_heads=32,
                                     tie_word_embeddings=True, max_position_embeddings=8192, rms_norm_eps=1e-5)
    t0 = time.perf_counter()
    with tp.nn.init_empty_weights():
        model = tp.AutoModelForCausalLM.model_class(config)(config)
    model.tie_weights()
    n_params = sum(p.numel() for p in model.parameters())
    replace_with_bnb_linear(model, quantization_config=BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True))
    model.is_loaded_in_4bit = True
    rng = np.random.default_rng(0)
    for name, p in model.named_parameters():  # one layer's float32 values at a time, quantized on assignment
        if "norm" in name:
            p.data = np.ones(p.shape, np.float32)
        else:
            p.data = (rng.standard_normal(p.shape, dtype=np.float32) * np.float32(0.02))
    build_s = time.perf_counter() - t0
    model = tp.prepare_model_for_kbit_training(model)
    ids = rng.integers(0, 49152, size=(args.big_batch, args.big_seq))
    step = tinypeft_step_fn(model, ids)
    out = timed(step, 1, warmup=0)
    out.update(params=n_params, quantized_mb=quantized_weight_bytes(model) / 2**20, build_s=build_s,
               batch=args.big_batch, seq=args.big_seq)
    return out


CHAT = [{"role": "user", "content": "Write a short story about a robot who learns to paint."}]
NEW_TOKENS = 48


def run_decode(args, kind):
    """Greedy chat generation from the GGUF file: tokens/s of NEW_TOKENS new tokens."""
    path = gguf_path(args)
    folder, name = os.path.dirname(path), os.path.basename(path)
    if kind == "torch":
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        torch.set_num_threads(args.threads)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
        prompt = AutoTokenizer.from_pretrained(folder, gguf_file=name).apply_chat_template(
            CHAT, add_generation_prompt=True, return_tensors="pt")["input_ids"]
        config = GenerationConfig(max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=None, pad_token_id=2)

        def generate():
            with torch.no_grad():
                return model.generate(prompt, attention_mask=torch.ones_like(prompt), generation_config=config)
    else:
        import tinypeft as tp
        from tinypeft.backend import cmatmul

        cmatmul.set_num_threads(args.threads)
        qc = {"f32": None, "gguf": tp.GGUFQuantizationConfig(), "nf4": tp.BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True)}[kind]
        model = tp.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, quantization_config=qc)
        prompt = tp.AutoTokenizer.from_pretrained(folder, gguf_file=name).apply_chat_template(
            CHAT, add_generation_prompt=True, return_tensors="np")["input_ids"]

        def generate():
            return model.generate(prompt, max_new_tokens=NEW_TOKENS, eos_token_id=[])

    generate()  # warm-up
    rates = []
    for _ in range(args.steps):
        t = time.perf_counter()
        out = generate()
        rates.append((out.shape[1] - prompt.shape[1]) / (time.perf_counter() - t))
    return {"tok_s": statistics.median(rates), "tok_s_min": min(rates), "tok_s_max": max(rates),
            "peak_rss_mb": peak_rss_mb()}


DECODE_ROWS = {"dec-torch-f32": lambda a: run_decode(a, "torch"), "dec-tp-f32": lambda a: run_decode(a, "f32"),
               "dec-tp-gguf": lambda a: run_decode(a, "gguf"), "dec-tp-nf4": lambda a: run_decode(a, "nf4")}

ROWS = {"torch-f32": run_torch, "tp-f32": lambda a: run_tinypeft(a, False, False),
        "tp-f32-ckpt": lambda a: run_tinypeft(a, False, True), "tp-nf4": lambda a: run_tinypeft(a, True, True),
        "tp-nf4-nockpt": lambda a: run_tinypeft(a, True, False),
        "tp-nf4-ckpt-half": lambda a: run_tinypeft(a, True, True, every=2),
        "tp-gguf": lambda a: run_tinypeft(a, "gguf", True), "tp-gguf-nockpt": lambda a: run_tinypeft(a, "gguf", False),
        **DECODE_ROWS}


def timed(step, steps, warmup=1):
    losses, times, cpu = [], [], []
    for i in range(warmup + steps):
        t, c = time.perf_counter(), time.process_time()
        losses.append(step())
        if i >= warmup:
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    return {"losses": losses, "step_s": statistics.median(times), "step_min": min(times), "step_max": max(times),
            "cpu_s": statistics.median(cpu), "peak_rss_mb": peak_rss_mb()}


def child(argv):
    proc = subprocess.run([sys.executable, os.path.abspath(__file__)] + argv, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="/work/models/smollm2-f32", help="SmolLM2-135M-Instruct, float32 safetensors")
    ap.add_argument("--gguf", default=None, help="load tinypeft's rows from this .gguf file instead (the tokenizer "
                    "still comes from --model)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--big", action="store_true", help="the 1.7B row instead of the 135M table")
    ap.add_argument("--decode", action="store_true", help="the decoding rows (tokens/s) instead of the LoRA step")
    ap.add_argument("--rounds", type=int, default=1, help="run every row this many times, alternating the rows")
    ap.add_argument("--big-batch", type=int, default=1)
    ap.add_argument("--big-seq", type=int, default=128)
    ap.add_argument("--rows", default="torch-f32,tp-f32,tp-f32-ckpt,tp-nf4,tp-nf4-nockpt",
                    help="which rows of the 135M table to run (comma-separated)")
    ap.add_argument("--only", choices=sorted(ROWS) + ["big"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.only:
        run = dict(ROWS, big=run_big)[args.only]
        print(json.dumps(run(args)))
        return
    common = ["--model", args.model, "--steps", str(args.steps), "--threads", str(args.threads)]
    common += ["--gguf", args.gguf] if args.gguf else []
    if args.big:
        r = child(common + ["--only", "big", "--big-batch", str(args.big_batch), "--big-seq", str(args.big_seq)])
        print(f"1.7B Llama-shaped (random), {r['params'] / 1e9:.2f}B parameters, 4-bit NF4 + double quant "
              f"({r['quantized_mb']:.0f} MiB of quantized weights), built and quantized in {r['build_s']:.0f} s")
        print(f"LoRA r=8 all-linear step, gradient checkpointing, batch {r['batch']} x {r['seq']}: "
              f"{r['step_s']:.1f} s, loss {r['losses'][0]:.3f}, peak RSS {r['peak_rss_mb']:.0f} MiB "
              f"({r['peak_rss_mb'] / 1024:.2f} GiB)")
        return
    if args.decode:
        names = args.rows.split(",") if args.rows.startswith("dec-") else list(DECODE_ROWS)
        runs = {n: [] for n in names}
        for _ in range(args.rounds):  # alternating: each round runs every row once
            for n in names:
                runs[n].append(child(common + ["--only", n]))
        print(f"SmolLM2-135M-Instruct chat generation, {NEW_TOKENS} new tokens, greedy, {args.threads} threads, "
              f"{args.rounds} round(s) x {args.steps} generations, load {os.getloadavg()[0]:.1f}")
        print(f"{'':14} {'peak RSS MiB':>12} {'tok/s (median [min, max])':>28}")
        med = {}
        for n, rs in runs.items():
            rates = [r["tok_s"] for r in rs]
            med[n] = statistics.median(rates)
            span = f"{med[n]:.1f} [{min(r['tok_s_min'] for r in rs):.1f}, {max(r['tok_s_max'] for r in rs):.1f}]"
            print(f"{n:14} {max(r['peak_rss_mb'] for r in rs):12.0f} {span:>28}")
        if "dec-torch-f32" in med:
            for n in names:
                if n != "dec-torch-f32":
                    print(f"{n} / dec-torch-f32 tokens/s: {med[n] / med['dec-torch-f32']:.2f}")
        return
    names = args.rows.split(",")
    runs = {n: [] for n in names}
    for _ in range(args.rounds):  # alternating: each round runs every row once, in its own process
        for n in names:
            runs[n].append(child(common + ["--only", n]))
    rows = {n: dict(rs[0], step_s=statistics.median(r["step_s"] for r in rs),
                    step_min=min(r["step_min"] for r in rs), step_max=max(r["step_max"] for r in rs),
                    cpu_s=statistics.median(r["cpu_s"] for r in rs), peak_rss_mb=max(r["peak_rss_mb"] for r in rs))
            for n, rs in runs.items()}
    print(f"SmolLM2-135M-Instruct, LoRA r={R} all-linear, AdamW, batch {BATCH} x {SEQ}, {args.threads} threads, "
          f"{args.rounds} round(s) x {args.steps} steps, load {os.getloadavg()[0]:.1f}")
    print(f"{'':14} {'peak RSS MiB':>12} {'step s (median [min, max])':>28} {'CPU s':>7}   losses")
    for name, r in rows.items():
        span = f"{r['step_s']:.2f} [{r['step_min']:.2f}, {r['step_max']:.2f}]"
        print(f"{name:14} {r['peak_rss_mb']:12.0f} {span:>28} {r['cpu_s']:7.2f}   "
              f"{' '.join(f'{x:.3f}' for x in r['losses'])}")
    q, f, t = rows.get("tp-nf4"), rows.get("tp-f32"), rows.get("torch-f32")
    if q and t:
        print(f"tp-nf4 peak RSS / torch-f32: {q['peak_rss_mb'] / t['peak_rss_mb']:.2f} (bar <= 0.5, aim < 600 MiB)")
    for name in ("tp-nf4", "tp-f32-ckpt", "tp-nf4-nockpt", "tp-nf4-ckpt-half", "tp-gguf", "tp-gguf-nockpt"):
        if name in rows and f:
            print(f"{name} / tp-f32: step {rows[name]['step_s'] / f['step_s']:.2f}, CPU "
                  f"{rows[name]['cpu_s'] / f['cpu_s']:.2f}{' (bar <= 1.5)' if name in ('tp-nf4', 'tp-gguf') else ''}")
    if q:
        print(f"tp-nf4 loss falls: {q['losses'][0]:.3f} -> {q['losses'][-1]:.3f}")


if __name__ == "__main__":
    main()
