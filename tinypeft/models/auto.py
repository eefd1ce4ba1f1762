"""Auto classes: config.json's model_type picks the architecture, as in transformers."""
import importlib

from ..hub import resolve_model_dir
from .configuration_utils import read_json_object
from .modeling_utils import check_dtype

# model_type -> (module in tinypeft.models, config class, {task: model class})
_ARCHITECTURES = {
    "gpt2": ("gpt2", "GPT2Config", {
        "base": "GPT2Model", "causal_lm": "GPT2LMHeadModel", "seq_cls": "GPT2ForSequenceClassification"}),
    "opt": ("opt", "OPTConfig", {
        "base": "OPTModel", "causal_lm": "OPTForCausalLM", "seq_cls": "OPTForSequenceClassification"}),
    "llama": ("llama", "LlamaConfig", {
        "base": "LlamaModel", "causal_lm": "LlamaForCausalLM", "seq_cls": "LlamaForSequenceClassification"}),
    "bert": ("bert", "BertConfig", {
        "base": "BertModel", "seq_cls": "BertForSequenceClassification",
        "token_cls": "BertForTokenClassification", "qa": "BertForQuestionAnswering"}),
    "t5": ("t5", "T5Config", {"base": "T5Model", "seq2seq_lm": "T5ForConditionalGeneration"}),
    "mt5": ("t5", "MT5Config", {"base": "MT5Model", "seq2seq_lm": "MT5ForConditionalGeneration"}),
    "whisper": ("whisper", "WhisperConfig", {
        "base": "WhisperModel", "speech_seq2seq": "WhisperForConditionalGeneration"}),
}


def _lookup(model_type, what):
    if not isinstance(model_type, str) or model_type not in _ARCHITECTURES:
        raise ValueError(
            f"tinypeft has no architecture for model_type {model_type!r}; supported: {sorted(_ARCHITECTURES)}."
        )
    module_name, config_name, tasks = _ARCHITECTURES[model_type]
    module = importlib.import_module(f"tinypeft.models.{module_name}")
    name = config_name if what == "config" else tasks.get(what)
    if name is None or not hasattr(module, name):
        raise ValueError(f"model_type {model_type!r} has no {what.replace('_', ' ')} model in tinypeft.")
    return getattr(module, name)


def architecture_class(config):
    """The class config.architectures names, looked up in this table of tinypeft's classes (never any other
    name of a module); None when it names none of them (a head tinypeft does not have)."""
    if config.model_type not in _ARCHITECTURES:
        _lookup(config.model_type, "config")  # raises, naming the supported model types
    module_name, _, tasks = _ARCHITECTURES[config.model_type]
    for arch in getattr(config, "architectures", None) or []:
        if arch in tasks.values():
            return getattr(importlib.import_module(f"tinypeft.models.{module_name}"), arch)
    return None


class AutoConfig:
    @staticmethod
    def for_model(model_type, **kwargs):
        return _lookup(model_type, "config")(**kwargs)

    @staticmethod
    def from_pretrained(pretrained_model_name_or_path, revision=None, **kwargs):
        path = resolve_model_dir(pretrained_model_name_or_path, revision=revision)
        if not (path / "config.json").is_file():
            raise OSError(f"{path} has no config.json: it is not a transformers-format model folder.")
        model_type = read_json_object(path / "config.json").get("model_type")
        if not model_type:
            raise ValueError(f"{path / 'config.json'} has no model_type, so the architecture is unknown.")
        config = _lookup(model_type, "config").from_pretrained(path, **kwargs)
        config.name_or_path = str(pretrained_model_name_or_path)
        return config


class _AutoModel:
    task = "base"

    def __init__(self):
        raise EnvironmentError(f"Use {type(self).__name__}.from_pretrained(...) or .from_config(config).")

    @classmethod
    def model_class(cls, config):
        return _lookup(config.model_type, cls.task)

    @classmethod
    def from_config(cls, config, **kwargs):
        return cls.model_class(config).from_config(config, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, revision=None, gguf_file=None, **kwargs):
        """The model of a folder, Hub cache entry or repo id, picked by its config's model_type.

        gguf_file: read a llama.cpp GGUF file in that folder instead (config, weights, no config.json needed).
        Its weights are dequantized to float32, as transformers does, unless quantization_config says otherwise:
          GGUFQuantizationConfig()   keep each linear layer in the file's own blocks (Q4_0, Q4_1, Q8_0, K-quants...)
                                     as a GGUFLinear, decoded a block at a time inside the matmuls
          BitsAndBytesConfig(...)    dequantize each tensor and quantize it again to NF4/FP4/int8 as it is read
        quantization_config=BitsAndBytesConfig(...) also loads a safetensors checkpoint quantized, layer by layer.
        """
        quantization_config = kwargs.pop("quantization_config", None)
        check_dtype(kwargs)  # float32 (or "auto") or a clear refusal, before anything is read
        gguf_path = _gguf_path(pretrained_model_name_or_path, revision, gguf_file)
        if gguf_path is not None:  # a llama.cpp file: config, weights (dequantized) from one .gguf
            from ..gguf import load_gguf_config, load_gguf_model

            if kwargs:
                raise TypeError(f"from_pretrained(gguf_file=...) takes no further arguments, got {sorted(kwargs)}")
            model_class = cls.model_class(load_gguf_config(gguf_path))
            # dequantized to float32; with a GGUFQuantizationConfig the linear layers keep the file's own blocks,
            # with a BitsAndBytesConfig they are re-quantized tensor by tensor
            return load_gguf_model(model_class, gguf_path, pretrained_model_name_or_path, quantization_config)
        config = kwargs.pop("config", None) or AutoConfig.from_pretrained(
            pretrained_model_name_or_path, revision=revision, **kwargs)
        return cls.model_class(config).from_pretrained(pretrained_model_name_or_path, config=config, revision=revision,
                                                       quantization_config=quantization_config)


def _gguf_path(name_or_path, revision, gguf_file):
    """The .gguf to load: `gguf_file` inside the model's folder, or a folder's only .gguf when it has no
    config.json (what fetch_smollm2 leaves); None for a transformers-format folder."""
    from ..gguf import find_gguf_file
    from ..hub import resolve_model_dir_or_fetch

    directory = resolve_model_dir_or_fetch(name_or_path, revision=revision)
    return find_gguf_file(directory, gguf_file)


# the head each class loads: the task's column in _ARCHITECTURES
class AutoModel(_AutoModel): task = "base"
class AutoModelForCausalLM(_AutoModel): task = "causal_lm"
class AutoModelForSeq2SeqLM(_AutoModel): task = "seq2seq_lm"
class AutoModelForSpeechSeq2Seq(_AutoModel): task = "speech_seq2seq"
class AutoModelForSequenceClassification(_AutoModel): task = "seq_cls"
class AutoModelForTokenClassification(_AutoModel): task = "token_cls"
class AutoModelForQuestionAnswering(_AutoModel): task = "qa"


class AutoFeatureExtractor:
    """preprocessor_config.json -> the feature extractor it names (tinypeft has Whisper's)."""

    @staticmethod
    def from_pretrained(pretrained_model_name_or_path, revision=None, **kwargs):
        from .feature_extraction_whisper import WhisperFeatureExtractor

        return WhisperFeatureExtractor.from_pretrained(pretrained_model_name_or_path, revision=revision, **kwargs)


class AutoProcessor:
    """A speech folder (preprocessor_config.json) with a tokenizer.json -> WhisperProcessor pairing the two;
    only preprocessor_config.json -> the feature extractor; only a tokenizer -> the tokenizer."""

    @staticmethod
    def from_pretrained(pretrained_model_name_or_path, revision=None, **kwargs):
        from ..tokenization import AutoTokenizer
        from .processing_whisper import WhisperProcessor

        path = resolve_model_dir(pretrained_model_name_or_path, revision=revision)
        has_features = (path / "preprocessor_config.json").is_file()
        if has_features and (path / "tokenizer.json").is_file():
            return WhisperProcessor.from_pretrained(path, **kwargs)
        if has_features:
            return AutoFeatureExtractor.from_pretrained(path, **kwargs)
        return AutoTokenizer.from_pretrained(path, **kwargs)
