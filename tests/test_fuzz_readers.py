"""Every file reader against random mutations of a valid file (issue 10): the answer is the file's
contents or a clean error of a documented type (ValueError, OSError, and their subclasses such as
checkpoint_io.SafetensorsError and json.JSONDecodeError; NotImplementedError for a PEFT option tinypeft does
not implement, as the README says), never another exception, a hang or a large allocation.

Mutations are of two kinds: byte-level (flip, overwrite, insert, delete, duplicate, truncate, splice in a
troublesome token) and, for the JSON readers and the safetensors header, structure-level (a value deep in
the JSON replaced by -1, 1e308, null, a string, a list, a huge int, ...), which gets past the JSON parser
to the checks behind it. GGUF files (a tiny llama written by llama.cpp's writer) get byte mutations, mostly
in the metadata and tensor infos; the reader, dequantization, the config and the tokenizer are checked.
"""
import contextlib
import json
import os
import shutil
import signal
import struct
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinypeft.checkpoint_io import load_file
from tinypeft.data import load_dataset
from tinypeft.models.auto import AutoConfig
from tinypeft.peft import PeftConfig
from tinypeft.tokenization import AutoTokenizer

FIXTURES = Path(__file__).parent / "fixtures"
DOCUMENTED = (ValueError, OSError, NotImplementedError)
EXAMPLES = int(os.environ.get("TINYPEFT_FUZZ_EXAMPLES", 200))  # raise it for a deeper search
MAX_PEAK_BYTES = 64 << 20  # far above what any of these small files needs
HANG_SECONDS = 60  # a guard against an endless loop, not a speed test
# derandomize: the default suite draws the same examples every run (no flaky failures); a deeper search
# with TINYPEFT_FUZZ_RANDOM=1 draws new ones
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # e.g. "unexpected keys were ignored": as PEFT
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize=not os.environ.get("TINYPEFT_FUZZ_RANDOM"),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])

TOKENS = [b"-1", b"1e999", b"null", b"[", b"]", b"{", b"}", b"\"", b",", b"\n", b"\x00", b"\xff\xfe",
          b"99999999999999999999999", b"NaN", b"-0", b"[[[[[[[[[[[[[[[[", b"\"\\u0000\""]
VALUES = [-1, 0, 1, 2 ** 63, -(2 ** 63), 10 ** 30, 1e308, -1e-308, 0.5, True, None, "", "x" * 50, "../../evil",
          [], [1, -1], {}, {"a": None}, [[[[[]]]]]]


@st.composite
def byte_mutations(draw, data):
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "duplicate", "truncate", "token"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif kind == "duplicate":
            data[at:at] = data[at:at + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del data[at:]
        elif kind == "token":
            data[at:at] = draw(st.sampled_from(TOKENS))
    return bytes(data)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@st.composite
def value_mutations(draw, obj):
    """The JSON object with 1-3 values (anywhere in it) replaced, or keys deleted."""
    obj = json.loads(json.dumps(obj))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(obj) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = obj
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and draw(st.integers(0, 4)) == 0:
            del parent[path[-1]]
        else:
            parent[path[-1]] = json.loads(json.dumps(draw(st.sampled_from(VALUES))))  # a copy: VALUES stay as they are
    return obj


def json_mutations(text):
    obj = json.loads(text)
    return st.one_of(byte_mutations(text.encode() if isinstance(text, str) else text),
                     value_mutations(obj).map(lambda o: json.dumps(o).encode()))


@contextlib.contextmanager
def guarded():
    """Fail on a hang (SIGALRM) or on a large allocation (tracemalloc's peak, NumPy's included)."""
    def hang(signum, frame):
        raise AssertionError(f"the reader ran for more than {HANG_SECONDS} s: a hang")

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(HANG_SECONDS)
    tracemalloc.start()
    try:
        yield
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert peak < MAX_PEAK_BYTES, f"the reader allocated {peak / 2**20:.0f} MiB"


SURVIVED = {}


def read_or_documented_error(name, read):
    """Run the reader; a documented error is a clean refusal, anything else fails the test."""
    SURVIVED[name] = SURVIVED.get(name, 0) + 1
    with guarded():
        try:
            read()
        except DOCUMENTED:
            pass


@pytest.fixture(scope="module", autouse=True)
def report(request):
    yield
    print("\nfuzz examples survived per reader: " + ", ".join(f"{k} {v}" for k, v in sorted(SURVIVED.items())))


# -- safetensors -------------------------------------------------------------------------------------------
SAFETENSORS = (FIXTURES / "peft" / "lora_gpt2" / "adapter_model.safetensors").read_bytes()


def split_safetensors(raw):
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def repack(header, data):
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def safetensors_mutations():
    header, data = split_safetensors(SAFETENSORS)
    return st.one_of(byte_mutations(SAFETENSORS[:4096]).map(lambda head: head + SAFETENSORS[4096:]),
                     byte_mutations(SAFETENSORS),
                     value_mutations(header).map(lambda h: repack(h, data)))


@FUZZ
@given(raw=safetensors_mutations())
def test_fuzz_safetensors(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("st") / "x.safetensors"
    path.write_bytes(raw)
    read_or_documented_error("safetensors", lambda: load_file(path))


# -- config.json -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    return Path(shutil.copytree(FIXTURES / "models" / "gpt2", tmp_path_factory.mktemp("m") / "gpt2"))


CONFIGS = {name: (FIXTURES / "models" / name / "config.json").read_text() for name in ("gpt2", "llama", "t5")}


@FUZZ
@given(raw=st.sampled_from(sorted(CONFIGS)).flatmap(lambda n: json_mutations(CONFIGS[n])))
def test_fuzz_config_json(model_folder, raw):
    (model_folder / "config.json").write_bytes(raw)
    read_or_documented_error("config.json", lambda: AutoConfig.from_pretrained(model_folder))


# -- adapter_config.json -----------------------------------------------------------------------------------
ADAPTERS = {name: (FIXTURES / "peft" / name / "adapter_config.json").read_text()
            for name in ("lora_gpt2", "ia3_gpt2", "prompt_tuning_gpt2", "prefix_tuning_opt", "p_tuning_llama")}


@FUZZ
@given(raw=st.sampled_from(sorted(ADAPTERS)).flatmap(lambda n: json_mutations(ADAPTERS[n])))
def test_fuzz_adapter_config_json(tmp_path_factory, raw):
    folder = tmp_path_factory.mktemp("ad")
    (folder / "adapter_config.json").write_bytes(raw)
    read_or_documented_error("adapter_config.json", lambda: PeftConfig.from_pretrained(folder))


# -- tokenizer files ---------------------------------------------------------------------------------------
TOKENIZER = {name: (FIXTURES / "tokenizers" / "bpe" / name).read_text()
             for name in ("tokenizer.json", "tokenizer_config.json")}


@FUZZ
@given(which=st.sampled_from(sorted(TOKENIZER)), data=st.data())
def test_fuzz_tokenizer_files(tmp_path_factory, which, data):
    raw = data.draw(json_mutations(TOKENIZER[which]))
    folder = tmp_path_factory.mktemp("tok")
    for name, text in TOKENIZER.items():
        (folder / name).write_text(text)
    (folder / which).write_bytes(raw)

    def read():
        tok = AutoTokenizer.from_pretrained(folder)
        tok("hello world")

    read_or_documented_error("tokenizer files", read)


# -- data files --------------------------------------------------------------------------------------------
JSONL = "".join(json.dumps(r) + "\n" for r in [{"text": "a good film", "label": "pos"}, {"text": "bad", "label": 0},
                                                 {"tokens": ["a", "b"], "tags": [0, 1]}])
CSV = "text,label\na good film,pos\n\"quoted, comma\",neg\nplain,1\n"


@FUZZ
@given(raw=byte_mutations(JSONL.encode()))
def test_fuzz_jsonl_reader(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("d") / "d.jsonl"
    path.write_bytes(raw)
    read_or_documented_error("jsonl", lambda: load_dataset("json", data_files=str(path), split="train"))


@FUZZ
@given(raw=st.one_of(byte_mutations(("[" + JSONL.strip().replace("\n", ",") + "]").encode()),
                     value_mutations([json.loads(line) for line in JSONL.splitlines()]).map(
                         lambda rows: json.dumps(rows).encode())))
def test_fuzz_json_array_reader(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("d") / "d.json"
    path.write_bytes(raw)
    read_or_documented_error("json array", lambda: load_dataset("json", data_files=str(path), split="train"))


@FUZZ
@given(raw=byte_mutations(CSV.encode()))
def test_fuzz_csv_reader(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("d") / "d.csv"
    path.write_bytes(raw)
    read_or_documented_error("csv", lambda: load_dataset("csv", data_files=str(path), split="train"))


# -- GGUF --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gguf_bytes(tmp_path_factory):
    """A tiny llama GGUF written with llama.cpp's own writer (tests/test_gguf.py's)."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_gguf import reference_model, write_tiny_gguf

    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    write_tiny_gguf(path, reference_model())
    return path.read_bytes()


@FUZZ
@given(data=st.data())
def test_fuzz_gguf(tmp_path_factory, gguf_bytes, data):
    from tinypeft.gguf import GGUFFile
    from tinypeft.gguf.mapping import config_dict_from_gguf
    from tinypeft.gguf.tokenizer import tokenizer_from_gguf_metadata
    from tinypeft.models.auto import AutoConfig

    head, rest = gguf_bytes[:4096], gguf_bytes[4096:]  # mutations where the metadata and tensor infos are
    raw = data.draw(st.one_of(byte_mutations(head).map(lambda h: h + rest), byte_mutations(gguf_bytes)))
    path = tmp_path_factory.mktemp("g") / "x.gguf"
    path.write_bytes(raw)

    def read():
        f = GGUFFile(path)
        for name in f.tensors:
            f.dequantize(name)
        config = config_dict_from_gguf(f)
        AutoConfig.for_model(config.pop("model_type"), **config)  # the config validation sees GGUF's numbers too
        tokenizer_from_gguf_metadata(f.metadata, str(path))

    read_or_documented_error("gguf", read)
