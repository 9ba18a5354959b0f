"""scripts/venv.sh, the virtualenv every script sources: its one-line errors on unusable Pythons.

Creating a virtualenv and installing TensorFlow takes minutes, so the success path is proven by
`.ci/run` itself (a fresh clone, no active virtualenv); these tests cover the refusals.
"""

import os
import shutil
import subprocess
import sys

from tests.conftest import REPO


def source_venv_sh(tmp_path, fake_pythons, virtual_env=None):
    """Sources a copy of scripts/venv.sh (project root = tmp_path) with `fake_pythons` first on PATH.

    Args:
      tmp_path: pathlib.Path, an empty folder standing in for the project root (no .venv).
      fake_pythons: dict of command name -> POSIX shell body, installed in tmp_path/bin.
      virtual_env: the active virtualenv's folder, or None for none.

    Returns:
      subprocess.CompletedProcess of `bash -c '. scripts/venv.sh test'`.
    """
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "venv.sh", tmp_path / "scripts" / "venv.sh")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in fake_pythons.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    if virtual_env is not None:
        env["VIRTUAL_ENV"] = str(virtual_env)
    env["PATH"] = os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"])
    return subprocess.run(["bash", "-c", ". scripts/venv.sh test || exit $?; echo sourced"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


def test_python_without_ensurepip_names_the_debian_package(tmp_path):
    # Debian/Ubuntu without python3-venv: `venv` imports, `ensurepip` does not.
    python3 = f'case "$*" in *ensurepip*) exit 1;; esac\nexec {sys.executable} "$@"'
    result = source_venv_sh(tmp_path, {"python3": python3})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "sudo apt install python3-venv" in result.stderr
    assert "sourced" not in result.stdout
    assert not (tmp_path / ".venv").exists()


def test_no_python_3_on_path_is_one_error_line(tmp_path):
    result = source_venv_sh(tmp_path, {"python3": "exit 1", "python": "exit 1"})  # e.g. Python 2
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: no python3 (3.9 or newer) on PATH; on Debian/Ubuntu: sudo apt install python3 python3-venv"]


def test_active_virtualenv_without_python_3_is_refused(tmp_path):
    (tmp_path / "old_env" / "bin").mkdir(parents=True)  # no bin/python in it
    result = source_venv_sh(tmp_path, {}, virtual_env=tmp_path / "old_env")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the active virtualenv" in result.stderr and "old_env" in result.stderr
