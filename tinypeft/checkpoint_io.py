"""Read and write checkpoints (.safetensors) as dicts of NumPy arrays.

The safetensors format is simple enough to read by hand, and we do, because NumPy has no bfloat16 and
`safetensors.numpy` refuses bf16 files ("data type 'bfloat16' not understood"), while most recent
checkpoints are bf16. A file is:

    8 bytes     N, the header length, little-endian uint64
    N bytes     JSON: {"name": {"dtype": "BF16", "shape": [768, 2304], "data_offsets": [begin, end]},
                       ..., "__metadata__": {"format": "pt"}}   (metadata optional, str -> str)
    the rest    the tensors' bytes, little-endian, row-major; offsets count from the end of the header

bfloat16 is the top half of a float32 (same sign and 8-bit exponent, mantissa cut to 7 bits), so
widening is exact: take the raw 16 bits as uint16, move them to the high half of a uint32 (<< 16) and
view the 32 bits as float32.

A big model is split into shards: model.safetensors.index.json holds {"weight_map": {name: shard file}}.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import tempfile
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np

PathLike = Union[str, os.PathLike]

# safetensors dtype name -> NumPy dtype of the stored bytes (little-endian). BF16 is read as raw uint16.
_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"


def bf16_bits_to_float32(bits: np.ndarray) -> np.ndarray:
    """uint16 bfloat16 bit patterns -> float32 values (exact)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def float32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> uint16 bfloat16 bit patterns, rounding to nearest even (as torch does); NaN stays NaN."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = u + (np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1)))  # round half to even on bit 16
    out = (rounded >> 16).astype(np.uint16)
    return np.where(np.isnan(x), np.uint16(0x7FC0), out)


class SafetensorsError(ValueError):
    """A .safetensors file whose header is malformed or does not describe its bytes."""


MAX_HEADER_BYTES = 100_000_000  # the safetensors library's own limit


def read_header(path: PathLike) -> Tuple[dict, int]:
    """The validated JSON header of a .safetensors file and the byte offset where tensor data starts."""
    with open(path, "rb") as f:
        return _read_header(f, path)


def _read_header(f, path) -> Tuple[dict, int]:
    """Read and check the header from the open file `f`: every tensor's dtype is known, its shape is
    non-negative integers, its data_offsets hold exactly dtype size x shape bytes, and the tensors tile
    the data area in order, without gaps or overlaps, up to the end of the file (as the safetensors
    library checks). So a header cannot make us allocate more than the file holds."""
    size = os.fstat(f.fileno()).st_size
    raw = f.read(8)
    if len(raw) != 8:
        raise SafetensorsError(f"{path}: too short to be a safetensors file")
    (n,) = struct.unpack("<Q", raw)
    if n > size - 8 or n > MAX_HEADER_BYTES:
        raise SafetensorsError(f"{path}: header length {n} runs past the end of the file ({size} bytes)")
    try:
        header = json.loads(f.read(n))
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise SafetensorsError(f"{path}: the header is not valid JSON ({type(e).__name__})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: the header is not a JSON object")
    metadata = header.get("__metadata__")
    if metadata is not None and not (isinstance(metadata, dict)
                                     and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise SafetensorsError(f"{path}: __metadata__ must map strings to strings")
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise SafetensorsError(f"{path}: tensor {name!r} needs exactly dtype, shape and data_offsets")
        dtype_name, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(dtype_name, str) or dtype_name not in _DTYPES:
            raise SafetensorsError(f"{path}: tensor {name!r} has dtype {dtype_name!r}, which tinypeft cannot read")
        if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
            raise SafetensorsError(f"{path}: tensor {name!r} has shape {shape!r}; dimensions are integers >= 0")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)
                and offsets[0] <= offsets[1]):
            raise SafetensorsError(f"{path}: tensor {name!r} has data_offsets {offsets!r}; expected [begin, end] "
                                   "with 0 <= begin <= end")
        nbytes = math.prod(shape) * _DTYPES[dtype_name].itemsize
        if offsets[1] - offsets[0] != nbytes:
            raise SafetensorsError(f"{path}: tensor {name!r} offsets {offsets[0]}..{offsets[1]} do not hold shape "
                                   f"{tuple(shape)} of {dtype_name} ({nbytes} bytes)")
        spans.append((offsets[0], offsets[1], name))
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            what = "overlaps the tensor before it" if begin < position else "leaves a gap before it"
            raise SafetensorsError(f"{path}: tensor {name!r} at byte {begin} {what} (expected {position})")
        position = end
    if 8 + n + position != size:
        raise SafetensorsError(f"{path}: the tensors end at byte {8 + n + position} but the file has {size} bytes "
                               "(truncated or padded)")
    return header, 8 + n


def _is_count(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def load_file(path: PathLike, upcast: bool = True) -> Dict[str, np.ndarray]:
    """All tensors of one .safetensors file. upcast: F16/BF16 become float32 (integers are kept)."""
    tensors, _ = load_file_with_metadata(path, upcast=upcast)
    return tensors


def load_file_with_metadata(path: PathLike, upcast: bool = True) -> Tuple[Dict[str, np.ndarray], dict]:
    """Header and data through one open handle: a file replaced meanwhile (os.replace by a writer) is
    read whole from the version that was opened, never a new header with old bytes."""
    tensors: Dict[str, np.ndarray] = {}
    with open(path, "rb") as f:
        header, start = _read_header(f, path)
        metadata = header.pop("__metadata__", None) or {}
        # Read in file order: one forward pass over the file.
        for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            dtype_name = info["dtype"]
            dtype, shape = _DTYPES[dtype_name], tuple(info["shape"])
            begin, end = info["data_offsets"]
            f.seek(start + begin)
            data = f.read(end - begin)
            if len(data) != end - begin:
                raise SafetensorsError(f"{path}: the file ended inside tensor {name!r} (it changed while read)")
            arr = np.frombuffer(data, dtype=dtype).reshape(shape)
            if dtype_name == "BF16":
                arr = bf16_bits_to_float32(arr)                    # always: NumPy has no bf16 to keep
            elif upcast and dtype_name == "F16":
                arr = arr.astype(np.float32)
            else:
                arr = arr.astype(dtype.newbyteorder("="))         # native byte order, writable copy
            tensors[name] = arr
    return tensors, metadata


def read_weight_map(model_dir: Path) -> Dict[str, str]:
    """model.safetensors.index.json's weight_map, each shard a file inside model_dir (a name such as
    "../../elsewhere.safetensors" is refused)."""
    index = model_dir / SAFE_WEIGHTS_INDEX_NAME
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{index}: not a shard index with a weight_map ({type(e).__name__}: {e})") from None
    if not isinstance(weight_map, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in weight_map.items()):
        raise ValueError(f"{index}: weight_map must map tensor names to shard file names")
    root = model_dir.resolve()
    for shard in set(weight_map.values()):
        if os.path.isabs(shard) or not (model_dir / shard).resolve().is_relative_to(root):
            raise ValueError(f"{index}: shard {shard!r} is outside the model folder; shards must be files in it")
    return weight_map


def checkpoint_files(model_dir: PathLike) -> list:
    """The .safetensors files of a model directory (one file, or the shards an index lists)."""
    model_dir = Path(model_dir)
    if model_dir.is_file():
        return [model_dir]
    single = model_dir / SAFE_WEIGHTS_NAME
    if single.is_file():
        return [single]
    index = model_dir / SAFE_WEIGHTS_INDEX_NAME
    if index.is_file():
        weight_map = read_weight_map(model_dir)
        return [model_dir / name for name in dict.fromkeys(weight_map.values())]  # unique, in order
    hint = ""
    if (model_dir / "pytorch_model.bin").exists():
        hint = (" It has pytorch_model.bin (a pickle, which needs torch); convert it once with "
                "transformers: Model.from_pretrained(dir).save_pretrained(dir, safe_serialization=True).")
    raise OSError(f"no {SAFE_WEIGHTS_NAME} or {SAFE_WEIGHTS_INDEX_NAME} in {model_dir}.{hint}")


def load_checkpoint(model_dir: PathLike, upcast: bool = True) -> Dict[str, np.ndarray]:
    """Every tensor of a checkpoint (model dir, or a single .safetensors file) by name, as NumPy arrays.

    Sharded checkpoints are merged; every name in the index's weight_map must be in its shard.
    float16 and bfloat16 are widened to float32 (bfloat16 always: NumPy has no such dtype).
    """
    model_dir = Path(model_dir)
    files = checkpoint_files(model_dir)
    state: Dict[str, np.ndarray] = {}
    for path in files:
        for name, arr in load_file(path, upcast=upcast).items():
            if name in state:
                raise ValueError(f"tensor {name!r} appears in more than one shard ({path.name})")
            state[name] = arr
    index = model_dir / SAFE_WEIGHTS_INDEX_NAME
    if len(files) and files[0].name != SAFE_WEIGHTS_NAME and index.is_file():
        weight_map = read_weight_map(model_dir)
        missing = [name for name in weight_map if name not in state]
        if missing:
            raise ValueError(f"{index}: {len(missing)} tensors listed but not in their shards, e.g. {missing[:3]}")
    return state


def save_file_atomic(tensors: Dict[str, np.ndarray], path: PathLike,
                     metadata: Optional[Dict[str, str]] = None) -> Path:
    """Write tensors to a .safetensors file so that readers see the old file or the whole new one.

    The bytes go to a temporary file in the same folder (same filesystem), are flushed to disk, and
    os.replace swaps it in, in one step. metadata: str -> str, e.g. {"format": "pt"} as PEFT writes.
    """
    from safetensors.numpy import save_file  # the library's writer: header padding and ordering as it does

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {name: np.ascontiguousarray(arr) for name, arr in tensors.items()}
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(arrays, tmp, metadata=metadata)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private (0600)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


class FolderLockedError(OSError):
    """Another live process is writing into the folder (its pid is in the folder's lock file)."""


LOCK_NAME = ".tinypeft.lock"
_held_locks: Dict[str, int] = {}  # folder -> how many times this process holds it (re-entrant)


@contextlib.contextmanager
def folder_lock(folder: PathLike, what: str = "writing"):
    """Hold folder/.tinypeft.lock (created exclusively, holding our pid) while writing into `folder`, so two
    processes cannot interleave their files there. A lock whose pid is no longer running (a killed run)
    is taken over; one held by a live process is a FolderLockedError naming that pid."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = str(folder.resolve())
    if key in _held_locks:
        _held_locks[key] += 1
        try:
            yield
        finally:
            _held_locks[key] -= 1
        return
    lock = folder / LOCK_NAME
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _lock_owner(lock)
            if owner is not None and owner != os.getpid() and _pid_alive(owner):
                raise FolderLockedError(f"{folder} is in use by process {owner} ({lock}); wait for it to finish, "
                                        "or use another folder") from None
            try:  # stale: its owner died without removing it
                os.remove(lock)
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        break
    else:
        raise FolderLockedError(f"{folder}: could not take {lock}; another process keeps taking it")
    _held_locks[key] = 1
    try:
        yield
    finally:
        del _held_locks[key]
        try:
            if _lock_owner(lock) == os.getpid():
                os.remove(lock)
        except FileNotFoundError:
            pass


def _lock_owner(lock: Path) -> Optional[int]:
    try:
        return int(lock.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None  # unreadable or half-written: treated as stale


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def consistent_read(folder: PathLike, files, read, attempts: int = 200, pause: float = 0.05):
    """read() of files that a writer may be replacing (one by one, under folder_lock) while we read them:
    wait while another live process holds the folder's lock, then read, and keep the result only if no
    file was replaced meanwhile (same inode, size and mtime before and after) and no writer came; else read
    again. So a reader never pairs one save's adapter_config.json with another save's weights."""
    import time

    folder, files = Path(folder), [Path(f) for f in files]

    def writing():
        owner = _lock_owner(folder / LOCK_NAME)
        return owner is not None and owner != os.getpid() and _pid_alive(owner)

    def stamps():
        out = []
        for f in files:
            try:
                st = os.stat(f)
                out.append((st.st_ino, st.st_size, st.st_mtime_ns))
            except FileNotFoundError:
                out.append(None)
        return out

    for _ in range(attempts):
        if writing():
            time.sleep(pause)
            continue
        before = stamps()
        try:
            result = read()
        except (ValueError, OSError):
            if stamps() == before and not writing():
                raise  # the files are stable: the error is theirs, not a torn read
            time.sleep(pause)
            continue
        if stamps() == before and not writing():
            return result
        time.sleep(pause)
    raise FolderLockedError(f"{folder}: its files kept changing while being read (another process is saving "
                            "there); try again when it has finished")
