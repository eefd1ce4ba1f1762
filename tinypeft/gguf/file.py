"""A GGUF file opened with llama.cpp's own reader (the `gguf` package), its metadata as plain Python.

A GGUF file is, in order:

    magic "GGUF", version (uint32), tensor count (uint64), metadata count (uint64)
    metadata: key (string), value type (uint32), value   e.g. "llama.block_count" UINT32 30
    tensor infos: name, n_dims, dims (innermost first), ggml type, offset into the data section
    padding to `general.alignment` (32 bytes), then the tensor data, each tensor aligned the same way

`gguf.GGUFReader` memory-maps the file and parses all of that; this module turns its fields into a dict
{key: int | float | bool | str | list} and gives every failure a message that names the file and the fix.
"""
import os
from pathlib import Path

import numpy as np

from .quants import dequantize, type_name


def _import_gguf():
    try:
        import gguf
    except ImportError:
        raise ImportError(
            "Reading GGUF files needs the `gguf` package (llama.cpp's reader): pip install 'tinypeft[gguf]'"
        ) from None
    return gguf


class GGUFFile:
    """`GGUFFile(path)`: .metadata {key: value}, .tensors {name: ReaderTensor}, .architecture, .dequantize(name)."""

    def __init__(self, path):
        gguf = _import_gguf()
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no GGUF file at {self.path}")
        size = self.path.stat().st_size
        try:
            self.reader = gguf.GGUFReader(self.path)
        except Exception as e:  # the reader raises ValueError, KeyError, IndexError... on bad bytes
            text = str(e)
            if "GGMLQuantizationType" in text:
                raise ValueError(
                    f"{self.path} stores a tensor in a quantization type this version of the gguf package does "
                    f"not know ({text}). tinypeft can read: {', '.join(_supported())}."
                ) from None
            raise ValueError(
                f"{self.path} ({size} bytes) is not a readable GGUF file: {type(e).__name__}: {text}. "
                "It may be truncated (an interrupted download) or not a GGUF file at all; download it again."
            ) from None
        self.metadata = {name: _field_value(field) for name, field in self.reader.fields.items()}
        self.tensors = {t.name: t for t in self.reader.tensors}
        # the reader's parsed fields (one small array per token string: far more memory than the metadata
        # dict) are not needed again; the tensors keep the memory map alive
        self.reader = None
        if self.tensors:  # the last tensor must end inside the file, or the file was cut short
            last = max(self.tensors.values(), key=lambda t: t.data_offset)
            if last.data_offset + int(last.n_bytes) > size or last.data.nbytes != int(last.n_bytes):
                raise ValueError(
                    f"{self.path} is truncated: tensor {last.name!r} needs bytes up to "
                    f"{last.data_offset + int(last.n_bytes)} but the file has {size}. Download it again."
                )

    @property
    def architecture(self):
        arch = self.metadata.get("general.architecture")
        if not arch:
            raise ValueError(f"{self.path} has no general.architecture in its metadata.")
        return arch

    def arch_value(self, key, default=None):
        """metadata["<architecture>.<key>"], e.g. arch_value("block_count")."""
        return self.metadata.get(f"{self.architecture}.{key}", default)

    def shape(self, name):
        """Row-major shape of a tensor (GGUF stores dims innermost first)."""
        return tuple(int(d) for d in reversed(self.tensors[name].shape.tolist()))

    def type_name(self, name):
        return type_name(self.tensors[name].tensor_type)

    def dequantize(self, name):
        """The tensor as a float32 array of its row-major shape."""
        t = self.tensors[name]
        try:
            return dequantize(t.data, t.tensor_type, self.shape(name))
        except NotImplementedError as e:
            raise NotImplementedError(f"{self.path}, tensor {name!r}: {e}") from None

    def __repr__(self):
        return f"GGUFFile({str(self.path)!r}, architecture={self.metadata.get('general.architecture')!r}, tensors={len(self.tensors)})"


def _supported():
    from .quants import SUPPORTED

    return SUPPORTED


def _field_value(field):
    """A ReaderField -> int, float, bool, str, or a list of them (strings decoded as UTF-8)."""
    gguf = _import_gguf()
    T = gguf.GGUFValueType
    types = field.types
    if not types:
        return None
    if types[0] == T.ARRAY:
        if len(types) > 1 and types[1] == T.STRING:
            return [bytes(field.parts[i]).decode("utf-8", errors="replace") for i in field.data]
        if len(types) > 1 and types[1] == T.ARRAY:
            return field.contents()
        if not field.data:
            return []
        # numeric arrays: the parts are one-element arrays; stack them in one go
        values = np.concatenate([field.parts[i] for i in field.data])
        return values.tolist()
    if types[0] == T.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8", errors="replace")
    value = field.parts[field.data[0]][0]
    if types[0] == T.BOOL:
        return bool(value)
    return value.item()


_CACHE = {}


def open_gguf(path):
    """A GGUFFile, kept while the file is unchanged: the model and its tokenizer read one file once."""
    path = Path(os.fspath(path)).expanduser()
    try:
        st = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"no GGUF file at {path}") from None
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _CACHE:
        _CACHE.clear()  # one file at a time: the reader maps the whole file
        _CACHE[key] = GGUFFile(path)
    return _CACHE[key]
