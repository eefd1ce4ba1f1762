"""`tinypeft generate`: continue each --prompt with a causal LM (gpt2, opt, llama) or answer it with a
seq2seq model (t5), with or without a LoRA/IA3/prompt-learning adapter; greedy unless --do-sample; --chat sends
each prompt through the tokenizer's chat template. Classification adapters do not generate: use
`tinypeft predict`."""
from .cli_args import (UsageError, add_model_options, non_negative_float, non_negative_int, positive_int, probability,
                       seed)
from .cli_models import (auto_class, context_length, default_task, existing_tokenizer_dir, load_tokenizer,
                         load_with_adapter, model_dir, read_config, virtual_tokens)


def add_generate_parser(sub, formatter_class):
    p = sub.add_parser("generate", help="generate text from a causal or seq2seq model, optionally with an adapter",
                       description=__doc__.split("\n\n")[0], formatter_class=formatter_class)
    add_model_options(p)
    p.add_argument("--prompt", action="append", required=True, help="a prompt; repeat for several")
    p.add_argument("--chat", action="store_true", help="send each prompt as a user message through the "
                   "tokenizer's chat template (an instruct model); print the answer only")
    p.add_argument("--max-new-tokens", type=positive_int, default=32, help="tokens to generate after the prompt")
    p.add_argument("--do-sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=non_negative_float, default=1.0, help="divides the logits before sampling")
    p.add_argument("--top-k", type=non_negative_int, default=50, help="sample from the k most likely tokens (0: all)")
    p.add_argument("--top-p", type=probability, default=1.0, help="nucleus sampling mass")
    p.add_argument("--seed", type=seed, default=0, help="seed of the sampling")


def cmd_generate(args):
    from . import manual_seed

    path = model_dir(args.model)
    tokenizer_dir = existing_tokenizer_dir(args.tokenizer)
    if args.do_sample and args.temperature == 0:
        raise UsageError("argument --temperature: 0 with --do-sample divides by zero; drop --do-sample for greedy "
                         "decoding or give a temperature > 0")
    empty = [i for i, p in enumerate(args.prompt) if not p.strip()]
    if empty:
        raise UsageError(f"argument --prompt: prompt {empty[0] + 1} is empty; give some text to continue")
    refuse_classifier(path, args.adapter)
    tokenizer = load_tokenizer(tokenizer_dir, args.adapter, path)
    if args.adapter:
        model, adapter_config = load_with_adapter(args.model, args.adapter)
    else:
        config = read_config(path)
        model = auto_class("SEQ_2_SEQ_LM" if default_task(config) == "SEQ_2_SEQ_LM" else "CAUSAL_LM").from_pretrained(args.model)
    model.eval()
    encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
    context = None if encoder_decoder else context_length(read_config(path))
    virtual = virtual_tokens(adapter_config) if args.adapter else 0
    if args.chat and tokenizer.chat_template is None:
        raise UsageError("argument --chat: the tokenizer has no chat template (no chat_template in "
                         "tokenizer_config.json): it is not a chat model; drop --chat to continue the text")
    if args.chat:
        batches = [tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                 return_dict=True, return_tensors="np") for prompt in args.prompt]
    else:
        batches = [tokenizer([prompt], return_tensors="np") for prompt in args.prompt]
    for prompt, batch in zip(args.prompt, batches):
        n = batch["input_ids"].shape[1]
        if n == 0:
            raise UsageError(f"argument --prompt: {prompt!r} gives no tokens; give some text to continue")
        if context is not None and virtual + n + args.max_new_tokens > context:
            used = f"the adapter's {virtual} virtual tokens + " if virtual else ""
            raise UsageError(f"argument --max-new-tokens: {used}the prompt's {n} tokens + {args.max_new_tokens} new "
                             f"ones are past the model's {context} positions; use --max-new-tokens "
                             f"{max(context - virtual - n, 0)} or less, or a shorter prompt")
    manual_seed(args.seed)
    for prompt, batch in zip(args.prompt, batches):  # one at a time: no padding, and output appears as it is made
        out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                             max_new_tokens=args.max_new_tokens, do_sample=args.do_sample,
                             temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                             pad_token_id=tokenizer.pad_token_id)
        ids = out.numpy()[0]
        new = ids if encoder_decoder else ids[batch["input_ids"].shape[1]:]
        text = tokenizer.decode(new, skip_special_tokens=True)
        if args.chat:
            print(text.strip(), flush=True)
        else:
            print(f"{prompt}{text}" if not encoder_decoder else f"{prompt} -> {text}", flush=True)
    return 0


def refuse_classifier(path, adapter):
    """`generate` needs a language-model head: a classification adapter or an encoder-only model (BERT)
    has none, which is the user's to fix (use `predict`), not a traceback."""
    from .peft import PeftConfig

    if adapter is not None:
        try:
            task = PeftConfig.from_pretrained(adapter).task_type
        except ValueError as e:
            raise UsageError(f"argument --adapter: {e}") from None
        if task is not None and str(task) in ("SEQ_CLS", "TOKEN_CLS"):
            raise UsageError(f"argument --adapter: {adapter} is a {task} adapter: it classifies and cannot "
                             f"generate text; use `tinypeft predict --model ... --adapter {adapter} --data FILE`")
    model_type = read_config(path).get("model_type")
    if default_task(read_config(path)) == "SEQ_CLS":
        raise UsageError(f"argument --model: {path} is a {model_type} encoder with no language-model head, so it "
                         "cannot generate text; give a causal or seq2seq model (gpt2, llama, t5, ...), or use "
                         "`tinypeft predict` with a classification adapter")
