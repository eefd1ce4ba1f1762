"""`tinypeft transcribe --model DIR [--adapter DIR] file.wav ...`: speech to text with Whisper.

Each WAV file is read with the standard library (16-bit PCM, resampled to the feature extractor's rate),
turned into log-mel features, and decoded greedily; one line of text per file is printed. The model folder
(or hub cache entry, e.g. openai/whisper-tiny) needs config.json, model.safetensors, preprocessor_config.json,
tokenizer.json and, for the language and task tokens, generation_config.json.
"""
from .cli_args import UsageError
from .cli_models import model_dir


def add_parser(sub, formatter_class):
    p = sub.add_parser("transcribe", help="speech to text with Whisper (WAV files), optionally with an adapter",
                       description=__doc__.split("\n\n")[1], formatter_class=formatter_class)
    p.add_argument("files", nargs="+", help="16-bit PCM WAV files (at most chunk_length seconds each)")
    p.add_argument("--model", required=True, help="Whisper model folder or repo id in the hub cache")
    p.add_argument("--adapter", default=None, help="a LoRA adapter folder for the model (PEFT's format)")
    p.add_argument("--language", default=None, help="e.g. en or french (default: detected, or the model's)")
    p.add_argument("--task", choices=["transcribe", "translate"], default=None,
                   help="transcribe in the spoken language or translate to English (default: the model's)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="default: generation_config's max_length")
    return p


def cmd_transcribe(args):
    from .audio import load_wav
    from .models.auto import AutoModelForSpeechSeq2Seq, AutoProcessor
    from .models.processing_whisper import WhisperProcessor

    path = model_dir(args.model)
    try:
        processor = AutoProcessor.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise UsageError(f"argument --model: {e}") from None
    if not isinstance(processor, WhisperProcessor):
        raise UsageError(f"argument --model: {path} needs preprocessor_config.json and tokenizer.json "
                         "(a Whisper model folder).")
    try:
        model = AutoModelForSpeechSeq2Seq.from_pretrained(path)
    except ValueError as e:
        raise UsageError(f"argument --model: {e}") from None
    if args.adapter is not None:
        from .peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, args.adapter).merge_and_unload()
        except (OSError, ValueError) as e:
            raise UsageError(f"argument --adapter: {e}") from None
    fe = processor.feature_extractor
    for file in args.files:
        try:
            wave = load_wav(file, sampling_rate=fe.sampling_rate, max_seconds=fe.chunk_length)
        except (OSError, ValueError) as e:
            raise UsageError(f"argument files: {e}") from None
        features = fe(wave, sampling_rate=fe.sampling_rate)["input_features"]
        try:
            ids = model.generate(features, language=args.language, task=args.task,
                                 max_new_tokens=args.max_new_tokens)
        except ValueError as e:
            raise UsageError(str(e)) from None
        print(processor.batch_decode(ids.numpy(), skip_special_tokens=True)[0].strip())
    return 0
