"""`tinypeft predict`: what a trained adapter says about each row of a file. Read --data (JSONL, JSON or CSV),
run the model with --adapter over every row and write --output as JSON Lines.

    tinypeft predict --model MODEL --adapter out --data in.jsonl --output out.jsonl

SEQ_CLS: each line of in.jsonl needs "text"; out.jsonl gets the line with "label" (the predicted class's
name, from the adapter's id2label) and "score" (its softmax probability), as transformers' text-classification
pipeline gives; a "label" already in the line is kept as "expected_label". CAUSAL_LM / SEQ_2_SEQ_LM: each line
needs "prompt" (or "text"); out.jsonl gets "generation" (greedy, the new text only).
"""
import json
import os
from pathlib import Path

import numpy as np

from .cli_args import UsageError, add_model_options
from .cli_models import existing_tokenizer_dir, load_tokenizer, load_with_adapter, model_dir


def add_predict_parser(sub, formatter_class):
    p = sub.add_parser("predict", help="run a trained adapter over a JSONL file; write labels or generations",
                       description=__doc__.split("\n\n")[0], formatter_class=formatter_class)
    add_model_options(p, adapter_required=True)
    p.add_argument("--data", required=True, help="JSONL, JSON or CSV file")
    p.add_argument("--output", required=True, help="JSONL file to write")
    p.add_argument("--batch-size", type=int, default=8, help="rows per forward pass (classification)")
    p.add_argument("--max-length", type=int, default=128, help="truncate inputs to this many tokens")
    p.add_argument("--max-new-tokens", type=int, default=32, help="tokens to generate (language models)")


def cmd_predict(args):
    from . import no_grad
    from .cli_data import read_rows

    path = model_dir(args.model)
    if not Path(args.data).is_file():
        raise UsageError(f"argument --data: file not found: {args.data}")
    for flag in ("batch_size", "max_length", "max_new_tokens"):
        if getattr(args, flag) <= 0:
            raise UsageError(f"argument --{flag.replace('_', '-')}: must be > 0, got {getattr(args, flag)}")
    out_file = Path(args.output)
    if out_file.is_dir():
        raise UsageError(f"argument --output: {args.output} is a folder; give a file path")
    if out_file.resolve() == Path(args.data).resolve():
        raise UsageError(f"argument --output: {args.output} is the --data file, which would be overwritten")
    tokenizer = load_tokenizer(existing_tokenizer_dir(args.tokenizer), args.adapter, path)
    model, config = load_with_adapter(args.model, args.adapter)
    task = str(config.task_type)
    try:
        rows = list(read_rows(args.data))
    except ValueError as e:
        raise UsageError(f"argument --data: {args.data}: {e}") from None
    if task == "SEQ_CLS":
        column = "text"
    elif task in ("CAUSAL_LM", "SEQ_2_SEQ_LM"):
        column = "prompt" if rows and "prompt" in rows[0] else "text"
    else:
        raise UsageError(f"argument --adapter: predict handles SEQ_CLS, CAUSAL_LM and SEQ_2_SEQ_LM adapters; "
                         f"this one is {task}")
    for i, row in enumerate(rows):
        if not isinstance(row.get(column), str) or not row[column].strip():
            raise UsageError(f"argument --data: {args.data}: row {i + 1} has no {column!r} text")
    base_config = model.get_base_model().config
    if task == "SEQ_CLS" and base_config.pad_token_id is None:
        base_config.pad_token_id = tokenizer.pad_token_id  # GPT-2's classifier finds each row's end by it
    model.eval()
    results = []
    with no_grad():
        if task == "SEQ_CLS":
            from .data import DataCollatorWithPadding

            collate = DataCollatorWithPadding(tokenizer)
            id2label = model.config.id2label or {}
            for start in range(0, len(rows), args.batch_size):
                chunk = rows[start:start + args.batch_size]
                batch = collate([tokenizer(r[column], truncation=True, max_length=args.max_length) for r in chunk])
                logits = model(**batch).logits.numpy()            # [B, num_labels]
                z = np.exp(logits - logits.max(-1, keepdims=True))
                probs = z / z.sum(-1, keepdims=True)
                for row, p in zip(chunk, probs):
                    k = int(p.argmax())
                    row = dict(row)
                    if "label" in row:
                        row["expected_label"] = row.pop("label")
                    results.append({**row, "label": id2label.get(k, f"LABEL_{k}"), "score": float(p[k])})
        else:
            encoder_decoder = task == "SEQ_2_SEQ_LM"
            for row in rows:  # one at a time: no padding
                batch = tokenizer([row[column]], truncation=True, max_length=args.max_length, return_tensors="np")
                ids = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                     max_new_tokens=args.max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id).numpy()[0]
                new = ids if encoder_decoder else ids[batch["input_ids"].shape[1]:]
                results.append({**row, "generation": tokenizer.decode(new, skip_special_tokens=True)})
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_name(f".{out_file.name}.tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results), encoding="utf-8")
    os.replace(tmp, out_file)  # atomic: never a half-written predictions file
    print(f"{len(results)} predictions written to {args.output}")
    return 0
