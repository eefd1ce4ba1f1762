"""Pretrain a tiny GPT-2 on the project's own corpus, then teach it a new style with LoRA and prompt tuning.

No pretrained causal LM can be downloaded here, so this makes one: a byte-level BPE tokenizer and a
GPT-2 of about two million parameters trained on short stories from tiny_corpus's grammar, saved as
transformers saves them (config.json, model.safetensors, tokenizer.json), so AutoModelForCausalLM and
AutoTokenizer load it here and in transformers alike. Then a new style the base never saw, "pirate"
(every sentence "Arr, ..., matey!"), is taught twice: by LoRA on c_attn and by prompt tuning, each
printing perplexity on held-out pirate text and greedy generations before and after.

    python -m tinypeft.examples.tiny_gpt2 pretrain       # 4-10 minutes on 2 cores (below); prints the directory
    python -m tinypeft.examples.tiny_gpt2 finetune       # about 2 minutes; pretrains first if needed
    python -m tinypeft.examples.tiny_gpt2 corpus --output corpus.txt

What the defaults gave on 2 cores (seeded, so a rerun prints the same figures; the time is the machine's):

    pretrain   1.98M parameters, 800 steps of 8 x 128 tokens: 218 s at load average 2, 545 s (561 s in all,
               with the tokenizer and the perplexities) at load average 13-16, the 2 cores shared with other
               jobs; stop it any time (Ctrl-C, even kill -9) and run it again to go on from its last
               checkpoint (every 100 steps); --max-steps N trains a shorter model (in its own folder)
               perplexity train 1006 -> 6.05, valid 1005 -> 6.19 (vocabulary 924)
    finetune   held-out pirate text; prompts "Arr, the brown cat", ... (8, greedy, 32 new tokens)
               base            perplexity 2686    ", matey!" in 0/8 generations
               LoRA r=8 c_attn perplexity 8.67    8/8    24,576 trainable, 600 steps, 74 s
               prompt tuning   perplexity 58.6    0/8    3,072 trainable (16 virtual tokens), 400 steps, 60 s

    before | Arr, the boy sat. The little tailor was sad, so he read a letter in the park. The little ...
    LoRA   | Arr, the boy sat in the morning, matey! Arr, the angry nurse was warm, so she gave away a
             green potato, matey!

Prompt tuning learns the sentence shape (commas where full stops were) but not to spell "matey", a word
this model never produced: 3k parameters in front of a 2M-parameter model steer it, they cannot teach it
new output. Lester et al. (2021) found prompt tuning matches fine-tuning only at billions of parameters.
Both adapters also raise the perplexity of plain text (6.0 -> 19 with LoRA): the model now expects pirates.

The model lands in ~/.cache/tinypeft/models/tiny-gpt2-<hash of the settings> (or --output); it appears
there only when complete (saved inside the run's checkpoint folder, then renamed), and a second `pretrain`
with the same settings finds it and trains nothing. While it trains, the visible folder <that name>-checkpoints
holds the tokenizer and the latest checkpoint (every 100 steps): a run that was stopped or killed continues
from it when `pretrain` is run again (as Trainer.train(resume_from_checkpoint=True); the model comes out
the same as without the stop), and the folder is removed once the model is saved. --force starts over.
Adapters go to <that folder>-pirate/{lora,prompt_tuning}.
"""
import argparse
import dataclasses
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ..autograd import no_grad
from ..creation import manual_seed
from ..data import Dataset, DataCollatorForLanguageModeling, default_data_collator
from ..hub import tinypeft_models_dir
from ..models.gpt2 import GPT2Config, GPT2LMHeadModel
from ..tensor import as_numpy
from ..tokenization import AutoTokenizer, PreTrainedTokenizer
from ..trainer import Trainer, TrainingArguments
from ..trainer.checkpointing import latest_checkpoint
from .tiny_corpus import generate_documents

EOS = "<|endoftext|>"
MARKER = "matey"  # the pirate style's sign-off: generations "in style" contain it


@dataclasses.dataclass
class PretrainSettings:
    n_docs: int = 9000          # about 1.6 MB of text
    n_valid_docs: int = 300
    corpus_seed: int = 0
    vocab_size: int = 1024
    n_embd: int = 192
    n_layer: int = 4
    n_head: int = 4
    n_positions: int = 128      # also the training block length
    batch_size: int = 8
    max_steps: int = 800
    learning_rate: float = 2e-3
    warmup_steps: int = 40
    weight_decay: float = 0.1
    seed: int = 0
    save_steps: int = 100       # a checkpoint to resume from; not part of the key (it does not change the model)

    def key(self):
        """A short hash of the settings: the folder name, so other settings never reuse a stale model."""
        settings = {k: v for k, v in dataclasses.asdict(self).items() if k != "save_steps"}
        return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]


@dataclasses.dataclass
class FinetuneSettings:
    n_train_docs: int = 400
    n_valid_docs: int = 60
    corpus_seed: int = 1        # other stories than pretraining's
    batch_size: int = 8
    lora_r: int = 8
    lora_alpha: int = 16
    lora_steps: int = 600
    lora_lr: float = 1e-2
    num_virtual_tokens: int = 16
    prompt_steps: int = 400
    prompt_lr: float = 0.3      # prompt tuning wants a large lr (Lester et al. use 0.3)
    n_prompts: int = 8
    max_new_tokens: int = 32
    seed: int = 0


# a miniature of both, for the fast test: seconds, not minutes
MINI_PRETRAIN = PretrainSettings(n_docs=400, n_valid_docs=20, vocab_size=320, n_embd=32, n_layer=2, n_head=2,
                                 n_positions=64, batch_size=8, max_steps=40, learning_rate=5e-3, warmup_steps=4,
                                 save_steps=10)
MINI_FINETUNE = FinetuneSettings(n_train_docs=48, n_valid_docs=8, lora_steps=12, lora_lr=1e-2, num_virtual_tokens=4,
                                 prompt_steps=8, n_prompts=2, max_new_tokens=8)


def default_output_dir(settings):
    return tinypeft_models_dir() / f"tiny-gpt2-{settings.key()}"


def checkpoints_dir(out):
    """Where pretraining keeps its tokenizer, log and latest checkpoint while it runs: a visible folder beside
    the model, which a second `pretrain` resumes from and which is removed once the model is saved."""
    return out.with_name(out.name + "-checkpoints")


# -- data ---------------------------------------------------------------------------------------------------
def train_tokenizer(texts, vocab_size, model_max_length):
    """Byte-level BPE as GPT-2's: any text encodes (bytes are the base alphabet), words keep their space."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    # GPT-2's convention: one token begins, ends and pads (padding is told apart by the attention mask)
    return PreTrainedTokenizer(tok, bos_token=EOS, eos_token=EOS, unk_token=EOS, pad_token=EOS,
                               model_max_length=model_max_length)


def lm_blocks(tokenizer, docs, block_size):
    """<eos> doc <eos> doc ... cut into rows of block_size tokens: [n_blocks, block_size]."""
    eos = tokenizer.eos_token_id
    ids = [eos]
    for row in tokenizer(docs, add_special_tokens=False)["input_ids"]:
        ids += row + [eos]
    n = len(ids) // block_size
    return np.asarray(ids[:n * block_size], dtype=np.int64).reshape(n, block_size)


def doc_examples(tokenizer, docs, max_length):
    """One example per document, <eos> doc <eos> (cut to max_length), for DataCollatorForLanguageModeling."""
    eos = tokenizer.eos_token_id
    rows = tokenizer(docs, add_special_tokens=False)["input_ids"]
    return [{"input_ids": ([eos] + row + [eos])[:max_length]} for row in rows]


def block_batches(blocks, batch_size):
    return [{"input_ids": b, "labels": b} for b in (blocks[i:i + batch_size] for i in range(0, len(blocks), batch_size))]


def example_batches(examples, collator, batch_size):
    return [collator(examples[i:i + batch_size]) for i in range(0, len(examples), batch_size)]


# -- measuring ----------------------------------------------------------------------------------------------
def perplexity(model, batches):
    """exp(mean negative log-likelihood per predicted token) over all the batches (labels -100 skipped)."""
    was_training = model.training
    model.eval()
    nll, count = 0.0, 0
    with no_grad():
        for batch in batches:
            n = int((np.asarray(batch["labels"])[:, 1:] != -100).sum())  # the model shifts labels by one
            nll += float(model(**batch).loss.item()) * n
            count += n
    model.train(was_training)
    return math.exp(nll / count)


def generate_texts(model, tokenizer, prompts, max_new_tokens):
    """Greedy continuations of each prompt (given after an <eos>, as documents start in training)."""
    was_training = model.training
    model.eval()
    batch = tokenizer([EOS + p for p in prompts], padding=True, padding_side="left", return_tensors="np")
    out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         max_new_tokens=max_new_tokens, eos_token_id=tokenizer.eos_token_id)
    model.train(was_training)
    width = batch["input_ids"].shape[1]
    return [p + tokenizer.decode(row[width:], skip_special_tokens=True) for p, row in zip(prompts, as_numpy(out))]


def marker_rate(texts, marker=MARKER):
    return sum(marker in t for t in texts) / len(texts)


def _train(model, dataset, collator, steps, lr, batch_size, output_dir, progress, weight_decay=0.0, warmup=0,
           schedule="linear", seed=0, save_steps=None, resume_from_checkpoint=None):
    """Train with the Trainer; with save_steps, keep the latest checkpoint in output_dir (save_total_limit=1)."""
    saving = dict(save_strategy="steps", save_steps=save_steps, save_total_limit=1) if save_steps else dict(
        save_strategy="no")
    args = TrainingArguments(output_dir=str(output_dir), max_steps=steps, per_device_train_batch_size=batch_size,
                             learning_rate=lr, weight_decay=weight_decay, warmup_steps=warmup,
                             lr_scheduler_type=schedule, logging_steps=max(1, steps // 20), report_to="jsonl",
                             disable_tqdm=not progress, seed=seed, **saving)
    trainer = Trainer(model, args, train_dataset=Dataset.from_list(dataset), data_collator=collator)
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    return time.perf_counter() - start


# -- pretraining --------------------------------------------------------------------------------------------
def pretrain(settings=None, output=None, force=False, progress=True, log=print):
    """Train tokenizer and model; write them to `output` (atomically) and return its Path.

    While it trains, checkpoints_dir(output) holds the tokenizer and the latest checkpoint (every save_steps):
    a run that was killed is continued from there by the next call with the same settings (as the Trainer's
    resume_from_checkpoint), with the same result as an uninterrupted run. force=True starts over."""
    s = settings or PretrainSettings()
    out = Path(output) if output else default_output_dir(s)
    work = checkpoints_dir(out)
    _remove_staging_of_older_versions(out)
    if (out / "model.safetensors").is_file() and not force:
        shutil.rmtree(work, ignore_errors=True)  # killed after the model was saved, before this was removed
        log(f"{out} already holds a model trained with these settings; pass force=True (--force) to retrain.")
        return out
    if force:
        shutil.rmtree(work, ignore_errors=True)
    docs = generate_documents(s.n_docs + s.n_valid_docs, seed=s.corpus_seed)
    train_docs, valid_docs = docs[:s.n_docs], docs[s.n_docs:]
    log(f"corpus: {len(train_docs)} documents ({sum(map(len, train_docs)) / 1e6:.2f} MB), {len(valid_docs)} held out")

    if (work / "tokenizer.json").is_file():  # a run to continue: its tokenizer, so the ids are the same
        tokenizer = AutoTokenizer.from_pretrained(work)
    else:
        tokenizer = train_tokenizer(train_docs, s.vocab_size, s.n_positions)
        work.mkdir(parents=True, exist_ok=True)
        tokenizer.save_pretrained(work)
    train_blocks = lm_blocks(tokenizer, train_docs, s.n_positions)  # [n, T]
    valid_blocks = lm_blocks(tokenizer, valid_docs, s.n_positions)
    log(f"tokenizer: {len(tokenizer)} tokens; {train_blocks.size:,d} training tokens in blocks of {s.n_positions}")

    config = GPT2Config(vocab_size=len(tokenizer), n_positions=s.n_positions, n_embd=s.n_embd, n_layer=s.n_layer,
                        n_head=s.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                        architectures=["GPT2LMHeadModel"])
    manual_seed(s.seed)
    model = GPT2LMHeadModel.from_config(config)
    log(f"model: GPT-2, {model.num_parameters():,d} parameters ({s.n_layer} layers, n_embd {s.n_embd})")

    eval_train = block_batches(train_blocks[:64], s.batch_size)  # a fixed sample: the figures are comparable
    eval_valid = block_batches(valid_blocks[:64], s.batch_size)
    before = {"train": perplexity(model, eval_train), "valid": perplexity(model, eval_valid)}
    log(f"perplexity before: train {before['train']:.1f}, valid {before['valid']:.1f} (vocabulary {len(tokenizer)})")

    latest = latest_checkpoint(work)
    if latest is not None:
        log(f"resuming from {latest} (step {latest.name.split('-')[-1]} of {s.max_steps}); --force starts over")
    dataset = [{"input_ids": b, "labels": b} for b in train_blocks]
    seconds = _train(model, dataset, default_data_collator, s.max_steps, s.learning_rate, s.batch_size, work,
                     progress, weight_decay=s.weight_decay, warmup=s.warmup_steps, schedule="cosine", seed=s.seed,
                     save_steps=s.save_steps, resume_from_checkpoint=str(latest) if latest else None)
    after = {"train": perplexity(model, eval_train), "valid": perplexity(model, eval_valid)}
    log(f"perplexity after {s.max_steps} steps ({seconds:.0f} s{' since the resume' if latest else ''}): "
        f"train {after['train']:.2f}, valid {after['valid']:.2f}")
    staging = work / "model"  # inside the visible folder: a kill here leaves nothing hidden
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    metrics = {"perplexity_before": before, "perplexity_after": after, "train_seconds": seconds,
               "resumed_from": str(latest) if latest else None, "parameters": model.num_parameters(),
               "settings": dataclasses.asdict(s)}
    (staging / "pretrain_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    for name in ("loss_curve.png", "trainer_log.jsonl"):  # the run's record goes with the model
        if (work / name).is_file():
            shutil.copyfile(work / name, staging / name)
    _replace_dir(staging, out)
    shutil.rmtree(work, ignore_errors=True)
    log(f"saved to {out} (with the run's loss_curve.png and trainer_log.jsonl)")
    return out


def _replace_dir(src, dst):
    """Rename src to dst; an old dst (--force) is first renamed to a visible <dst>-old, removed after, so
    dst is never half-written."""
    old = None
    if dst.exists():
        old = dst.with_name(f"{dst.name}-old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _remove_staging_of_older_versions(out):
    """Before checkpoints_dir, pretrain built the model in a hidden .<name>.<random> folder beside it, which a
    kill left behind; remove those (and a <name>-old left by a kill during --force's swap)."""
    if not out.parent.is_dir():
        return
    for p in out.parent.iterdir():
        if p.is_dir() and (p.name.startswith(f".{out.name}.") or p.name == f"{out.name}-old"):
            shutil.rmtree(p, ignore_errors=True)


# -- fine-tuning --------------------------------------------------------------------------------------------
def finetune(base=None, settings=None, output=None, progress=True, log=print):
    """LoRA and prompt tuning of the base toward the pirate style; returns the before/after figures."""
    from ..models.auto import AutoModelForCausalLM
    from ..peft import LoraConfig, PromptTuningConfig, get_peft_model

    s = settings or FinetuneSettings()
    base = Path(base) if base else pretrain(progress=progress, log=log)
    out = Path(output) if output else base.with_name(base.name + "-pirate")
    tokenizer = AutoTokenizer.from_pretrained(base)
    n = s.n_train_docs + s.n_valid_docs
    pirate = generate_documents(n, seed=s.corpus_seed, min_sentences=2, max_sentences=3, style="pirate")
    plain = generate_documents(n, seed=s.corpus_seed, min_sentences=2, max_sentences=3)  # the same stories
    config = json.loads((base / "config.json").read_text())
    max_length = config["n_positions"] - s.num_virtual_tokens  # prompt tuning's virtual tokens take positions too
    train = doc_examples(tokenizer, pirate[:s.n_train_docs], max_length)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)
    valid = example_batches(doc_examples(tokenizer, pirate[s.n_train_docs:], max_length), collator, s.batch_size)
    valid_plain = example_batches(doc_examples(tokenizer, plain[s.n_train_docs:], max_length), collator, s.batch_size)
    # prompts: the opening of held-out pirate stories ("Arr, the brave sailor"); the base goes on in its
    # own style (full stops, no sign-off), a tuned model should end each sentence with ", matey!"
    prompts = [" ".join(d.split()[:4]) for d in pirate[s.n_train_docs:][:s.n_prompts]]

    def load_base():
        model = AutoModelForCausalLM.from_pretrained(base)
        for p in model.parameters():
            p.requires_grad = False
        return model

    model = load_base()
    before = {"pirate_perplexity": perplexity(model, valid), "plain_perplexity": perplexity(model, valid_plain)}
    samples_before = generate_texts(model, tokenizer, prompts, s.max_new_tokens)
    before["marker_rate"] = marker_rate(samples_before)
    log(f"base model: pirate perplexity {before['pirate_perplexity']:.2f}, plain {before['plain_perplexity']:.2f}, "
        f"'{MARKER}' in {before['marker_rate']:.0%} of greedy generations")
    for p, t in zip(prompts[:4], samples_before):
        log(f"  before | {t}")

    methods = {"lora": lambda: LoraConfig(task_type="CAUSAL_LM", r=s.lora_r, lora_alpha=s.lora_alpha,
                                          target_modules=["c_attn"], lora_dropout=0.0, fan_in_fan_out=True),
               "prompt_tuning": lambda: PromptTuningConfig(task_type="CAUSAL_LM",
                                                           num_virtual_tokens=s.num_virtual_tokens)}
    results = {"base": dict(before, samples=samples_before, prompts=prompts)}
    steps = {"lora": (s.lora_steps, s.lora_lr), "prompt_tuning": (s.prompt_steps, s.prompt_lr)}
    for name, make_config in methods.items():
        manual_seed(s.seed)
        peft_model = get_peft_model(load_base(), make_config())
        trainable, total = peft_model.get_nb_trainable_parameters()
        n_steps, lr = steps[name]
        with tempfile.TemporaryDirectory() as tmp:
            seconds = _train(peft_model, train, collator, n_steps, lr, s.batch_size, tmp, progress, seed=s.seed)
        after = {"pirate_perplexity": perplexity(peft_model, valid),
                 "plain_perplexity": perplexity(peft_model, valid_plain)}
        samples = generate_texts(peft_model, tokenizer, prompts, s.max_new_tokens)
        after["marker_rate"] = marker_rate(samples)
        peft_model.save_pretrained(out / name)
        results[name] = dict(after, samples=samples, train_seconds=seconds, steps=n_steps,
                             trainable_parameters=trainable, all_parameters=total, adapter=str(out / name))
        log(f"{name}: {trainable:,d} trainable of {total:,d}; {n_steps} steps in {seconds:.0f} s")
        log(f"  pirate perplexity {before['pirate_perplexity']:.2f} -> {after['pirate_perplexity']:.2f}; "
            f"plain {before['plain_perplexity']:.2f} -> {after['plain_perplexity']:.2f}; "
            f"'{MARKER}' in {before['marker_rate']:.0%} -> {after['marker_rate']:.0%} of greedy generations")
        for t in samples[:4]:
            log(f"  after  | {t}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "finetune_metrics.json").write_text(json.dumps(results, indent=2) + "\n")
    log(f"adapters saved under {out}")
    return results


# -- command line -------------------------------------------------------------------------------------------
def _positive_int(text):
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"must be a whole number > 0, got {text!r}")
    return int(text)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tinypeft.examples.tiny_gpt2", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pretrain", help="train the tokenizer and the base model")
    p.add_argument("--output", help="model folder (default: ~/.cache/tinypeft/models/tiny-gpt2-<hash>)")
    p.add_argument("--force", action="store_true", help="retrain from scratch even if the folder holds a model or "
                   "the checkpoint of an interrupted run (which is otherwise resumed)")
    p.add_argument("--max-steps", type=_positive_int, help=f"optimizer steps (default {PretrainSettings.max_steps}); "
                   "another number is another model, in its own folder")
    p.add_argument("--mini", action="store_true", help="the seconds-long miniature the tests use")
    f = sub.add_parser("finetune", help="LoRA and prompt tuning toward the pirate style")
    f.add_argument("--base", help="base model folder (default: pretrain's, trained first if missing)")
    f.add_argument("--output", help="adapters folder (default: <base>-pirate)")
    f.add_argument("--mini", action="store_true")
    c = sub.add_parser("corpus", help="write the pretraining corpus, one document a line")
    c.add_argument("--output", required=True)
    c.add_argument("--n-docs", type=int, default=PretrainSettings.n_docs)
    args = parser.parse_args(argv)

    if args.command == "corpus":
        Path(args.output).write_text("\n".join(generate_documents(args.n_docs)) + "\n", encoding="utf-8")
        print(args.output)
    elif args.command == "pretrain":
        s = dataclasses.replace(MINI_PRETRAIN if args.mini else PretrainSettings())
        if args.max_steps:
            s.max_steps = args.max_steps
        print(pretrain(s, args.output, force=args.force))
    else:
        base = args.base or (pretrain(MINI_PRETRAIN) if args.mini else None)
        finetune(base, MINI_FINETUNE if args.mini else FinetuneSettings(), args.output)


if __name__ == "__main__":
    main()
