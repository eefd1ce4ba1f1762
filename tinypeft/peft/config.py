"""PeftConfig and its JSON file (adapter_config.json), field for field as Hugging Face PEFT writes it.

PEFT_FORMAT_VERSION is the PEFT release whose adapter format tinypeft reads and writes; it goes into
`peft_version` so that files we save look to PEFT like its own.
"""
import dataclasses
import enum
import json
import math
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

PEFT_FORMAT_VERSION = "0.21.2"
CONFIG_NAME = "adapter_config.json"


class PeftType(str, enum.Enum):
    LORA = "LORA"
    PROMPT_TUNING = "PROMPT_TUNING"
    PREFIX_TUNING = "PREFIX_TUNING"
    P_TUNING = "P_TUNING"
    IA3 = "IA3"
    LOHA = "LOHA"
    LOKR = "LOKR"
    VERA = "VERA"
    LN_TUNING = "LN_TUNING"
    MISS = "MISS"
    HRA = "HRA"
    OFT = "OFT"
    BOFT = "BOFT"
    FOURIERFT = "FOURIERFT"
    ADALORA = "ADALORA"
    HIRA = "HIRA"
    WAVEFT = "WAVEFT"
    C3A = "C3A"
    DELORA = "DELORA"
    GRALORA = "GRALORA"
    ROAD = "ROAD"
    RANDLORA = "RANDLORA"
    ADAPTION_PROMPT = "ADAPTION_PROMPT"
    # methods2's block
    SUPERTUNING = "SUPERTUNING"
    PEANUT = "PEANUT"
    PSOFT = "PSOFT"
    DEFT = "DEFT"
    LILY = "LILY"
    GLORA = "GLORA"
    BEFT = "BEFT"
    # methods1's block
    PVERA = "PVERA"
    VBLORA = "VBLORA"
    UNILORA = "UNILORA"
    TINYLORA = "TINYLORA"
    SHIRA = "SHIRA"

    def __str__(self):
        return self.value


class TaskType(str, enum.Enum):
    SEQ_CLS = "SEQ_CLS"
    SEQ_2_SEQ_LM = "SEQ_2_SEQ_LM"
    CAUSAL_LM = "CAUSAL_LM"
    TOKEN_CLS = "TOKEN_CLS"
    QUESTION_ANS = "QUESTION_ANS"
    FEATURE_EXTRACTION = "FEATURE_EXTRACTION"

    def __str__(self):
        return self.value


def _jsonable(v):
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, (set, frozenset)):
        return sorted(v)
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


@dataclass
class PeftConfig:
    """Fields every method shares. Subclasses add their own; `peft_type` says which method a file holds."""

    task_type: Optional[Union[str, TaskType]] = None
    peft_type: Optional[Union[str, PeftType]] = None
    auto_mapping: Optional[dict] = None
    peft_version: Optional[str] = None
    base_model_name_or_path: Optional[str] = None
    revision: Optional[str] = None
    inference_mode: bool = False

    _peft_type = None  # not a field: the method's PeftType, a class keyword (see __init_subclass__)

    def __init_subclass__(cls, **options):
        """A method's config names its PeftType and its base's check options as class keywords,
        `class HiraConfig(TargetModulesConfig, peft_type=PeftType.HIRA, r_min=None)`: each is stored as the class
        attribute _<name> (which must exist on the base), and __post_init__ writes peft_type into every instance."""
        super().__init_subclass__()
        for name, value in options.items():
            if not hasattr(cls, "_" + name):
                raise TypeError(f"{cls.__name__}: {name!r} is not an option of {cls.__mro__[1].__name__}.")
            setattr(cls, "_" + name, value)

    def __post_init__(self):
        if self._peft_type is not None:
            self.peft_type = self._peft_type
        if self.peft_version is None:
            self.peft_version = PEFT_FORMAT_VERSION
        if self.task_type is not None:
            try:
                self.task_type = TaskType(self.task_type)
            except ValueError:
                raise ValueError(
                    f"Invalid task_type {self.task_type!r}: use one of {[t.value for t in TaskType]}."
                ) from None

    @property
    def is_prompt_learning(self):
        return False

    def to_dict(self):
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def save_pretrained(self, save_directory):
        """adapter_config.json exactly as PEFT writes it: sorted keys, indent 2, inference_mode true."""
        d = self.to_dict()
        d["inference_mode"] = True
        text = json.dumps(d, indent=2, sort_keys=True)
        save_directory = Path(save_directory)
        save_directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=save_directory, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, save_directory / CONFIG_NAME)

    @classmethod
    def from_dict(cls, d):
        """Known fields are taken; unknown ones (from a newer PEFT) are dropped with a warning."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            warnings.warn(f"Unexpected keys in the {cls.__name__} were ignored: {unknown}")
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_pretrained(cls, path, subfolder=None, **kwargs):
        """Read adapter_config.json; called on PeftConfig itself, it picks the class from `peft_type`."""
        path = Path(path) / subfolder if subfolder else Path(path)
        file = path / CONFIG_NAME if path.is_dir() else path
        if not file.is_file():
            raise ValueError(f"Can't find '{CONFIG_NAME}' at '{path}'.")
        from ..models.configuration_utils import read_json_object

        d = read_json_object(file, fix="save the adapter again")
        d.update(kwargs)
        if "peft_type" not in d:
            raise ValueError(f"{file} has no peft_type, so it is not a PEFT adapter config.")
        if cls is PeftConfig:
            from .mapping import PEFT_TYPE_TO_CONFIG_MAPPING

            config_cls = PEFT_TYPE_TO_CONFIG_MAPPING.get(d["peft_type"]) if isinstance(d["peft_type"], str) else None
            if config_cls is None:
                raise ValueError(
                    f"{file}: peft_type {d['peft_type']!r} is not supported by tinypeft; "
                    f"supported: {sorted(PEFT_TYPE_TO_CONFIG_MAPPING)}."
                )
            cls = config_cls
        try:
            return cls.from_dict(d)
        except TypeError as e:  # a field of the wrong type (r="8", target_modules=3, ...)
            raise ValueError(f"{file}: {e}") from None


@dataclass
class PromptLearningConfig(PeftConfig):
    """Shared by prompt tuning, prefix tuning and P-tuning: N virtual tokens of width token_dim."""

    num_virtual_tokens: Optional[int] = None
    token_dim: Optional[int] = None
    num_transformer_submodules: Optional[int] = None
    num_attention_heads: Optional[int] = None
    num_layers: Optional[int] = None
    modules_to_save: Optional[list] = None

    @property
    def is_prompt_learning(self):
        return True


def check_number(config, name, low=None, high=None, integer=False, high_open=False):
    """Refuse a hyper-parameter that is not a finite number in range (lora_alpha=inf would train every weight
    to inf, lora_dropout=1 divides by zero); None is left alone (the field's "not set")."""
    value = getattr(config, name)
    if value is None:
        return
    kind = "a whole number" if integer else "a finite number"
    ok = not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
    ok = ok and math.isfinite(value) and (low is None or value >= low)
    ok = ok and (high is None or (value < high if high_open else value <= high))
    if not ok:
        bounds = f" in [{low}, {high}{')' if high_open else ']'}" if high is not None else (
            f" >= {low}" if low is not None else "")
        raise ValueError(f"{type(config).__name__}({name}={value!r}): must be {kind}{bounds}.")


@dataclass
class TargetModulesConfig(PeftConfig):
    """The fields that choose which layers a weight adapter wraps, and their checks, shared by the weight
    adapters whose PEFT configs repeat them (LoHa, LoKr, HRA, MiSS, VeRA, OFT, BOFT, FourierFT, WaveFT, HiRA,
    C3A, DeLoRA, GraLoRA, RandLoRA; same names and defaults in each).

    As PEFT's configs do first: target/exclude lists become sets, a single layer index becomes a list, r is
    checked, and layers_pattern needs layers_to_transform; tinypeft adds that a `bias` field must be "none".
    PEFT's configs differ in which of these checks they make; the class attributes below say which a
    subclass keeps, so each refuses what PEFT's does.
    """

    target_modules: Optional[Union[list, str]] = None
    layers_to_transform: Optional[Union[list, int]] = None
    layers_pattern: Optional[Union[list, str]] = None
    modules_to_save: Optional[list] = None

    # not fields (no annotation): which checks this config makes, set by a subclass as class keywords
    # (r_min=None, pattern_needs_layers=False, refused_with_regex=(...))
    _r_min = 1  # r must be an integer >= this (OFT allows 0); None: no r, or the subclass checks it itself
    _pattern_needs_layers = True  # layers_pattern without layers_to_transform is refused
    _refused_with_regex = ()  # fields refused beside a regex (str) target_modules

    def __post_init__(self):
        super().__post_init__()
        for name in ("target_modules", "exclude_modules"):  # exclude_modules: all but VeRA have it
            if isinstance(getattr(self, name, None), list):
                setattr(self, name, set(getattr(self, name)))
        if isinstance(self.layers_to_transform, int):
            self.layers_to_transform = [self.layers_to_transform]
        for name in self._refused_with_regex:
            if isinstance(self.target_modules, str) and getattr(self, name) is not None:
                raise ValueError(f"`{name}` cannot be used when `target_modules` is a str.")
        if self._r_min is not None and (isinstance(self.r, bool) or not isinstance(self.r, int)
                                        or self.r < self._r_min):
            kind = "positive" if self._r_min == 1 else "non-negative"
            raise ValueError(f"{type(self).__name__}(r={self.r!r}): r must be a {kind} integer.")
        if self._pattern_needs_layers and self.layers_pattern and self.layers_to_transform is None:
            raise ValueError("When `layers_pattern` is specified, `layers_to_transform` must also be specified. ")
        if getattr(self, "bias", "none") != "none":  # PEFT's bias="all"/"lora_only" training is not implemented
            raise NotImplementedError(f"{type(self).__name__}(bias={self.bias!r}) is not implemented by tinypeft; "
                                      "use 'none'.")


@dataclass
class ModuleTargetsConfig(PeftConfig):
    """target_modules and modules_to_save alone, for the methods whose PEFT configs have no layer selection
    (BEFT, GLoRA): a target list becomes a set, as PEFT's configs do."""

    target_modules: Optional[Union[list, str]] = None
    modules_to_save: Optional[list] = None

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.target_modules, list):
            self.target_modules = set(self.target_modules)


@dataclass
class LinearTargetConfig(TargetModulesConfig):
    """TargetModulesConfig plus two more fields PEFT repeats, in the configs of GraLoRA, RandLoRA, VeRA, OFT, BOFT,
    FourierFT and WaveFT: fan_in_fan_out (the target stores its weight [in, out], as GPT-2's Conv1D does; a Linear
    or Conv1D target corrects it with PEFT's warning) and bias (which biases train: tinypeft implements "none")."""

    fan_in_fan_out: bool = False
    bias: str = "none"


@dataclass
class SharedProjectionConfig(LinearTargetConfig):
    """LinearTargetConfig plus the fields of the methods whose frozen random matrices are shared by every layer
    (VeRA, RandLoRA; tuners/shared_projections.py): projection_prng_key, their seed, and save_projection, whether
    the adapter file stores them. tinypeft needs them stored: it draws them from its own generator, not torch's."""

    projection_prng_key: int = 0
    save_projection: bool = True

    def __post_init__(self):
        super().__post_init__()
        if not self.save_projection:
            raise NotImplementedError(
                f"{type(self).__name__}(save_projection=False) is not supported by tinypeft: the shared matrices would "
                "have to be regenerated from torch's random stream. Use save_projection=True (PEFT's default).")


def check_one_size(config, a, b):
    """PEFT's rule for two sizes whose product is in_features (OFT's r and oft_block_size, BOFT's
    boft_block_size and boft_block_num): exactly one is given (non-zero), the other is derived from it."""
    x, y = getattr(config, a), getattr(config, b)
    if x == 0 and y == 0:
        raise ValueError(f"Either `{a}` or `{b}` must be non-zero. Currently, {a} = {x} and {b} = {y}.")
    if not (x != 0) ^ (y != 0):
        raise ValueError(f"You can only specify either {a} ({x}) or {b} ({y}), but not both simultaneously, "
                         f"because {a} x {b} == in_features.")


def check_adapter_name(adapter_name):
    """Adapter names become folder names (save_directory/<name>) and parts of module paths: a plain name,
    never a path (an absolute name would be written outside the save folder) and without dots."""
    bad = not isinstance(adapter_name, str) or not adapter_name or os.path.isabs(adapter_name)
    if bad or any(c in adapter_name for c in "/\\.\0"):
        raise ValueError(f"adapter name {adapter_name!r} is not a plain name; use letters, digits, '_' or '-' "
                         "(it becomes a folder name when saved).")
    return adapter_name


def unsupported(config, **fields):
    """Refuse PEFT options tinypeft does not implement, naming them, instead of silently ignoring them."""
    for name, default in fields.items():
        value = getattr(config, name)
        if value is not None and value != default:
            raise NotImplementedError(
                f"{type(config).__name__}({name}={value!r}) is not supported by tinypeft; "
                f"leave it at {default!r}."
            )


__all__ = ["PeftConfig", "PromptLearningConfig", "TargetModulesConfig", "LinearTargetConfig",
           "SharedProjectionConfig", "PeftType", "TaskType", "field"]
