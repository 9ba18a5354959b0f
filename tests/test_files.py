"""Files written whole or not at all (srgan_tf/files.py): a failure part-way keeps the old file."""

import errno
import json
import os

import pytest

from srgan_tf import files
from srgan_tf.cli import common


class HalfWrittenFile:
    """A file object whose `write` stores half of what it is given, then fails as a full disk."""

    def __init__(self, file):
        self._file = file

    def write(self, data):
        self._file.write(data[:len(data) // 2])
        self._file.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()


@pytest.fixture
def full_disk(monkeypatch):
    """Makes every file that srgan_tf.files opens fail half-way through its first write."""
    monkeypatch.setattr(files, "open", lambda *a, **k: HalfWrittenFile(open(*a, **k)),
                        raising=False)


def test_write_text_and_json_replace_the_whole_file(tmp_path):
    path = tmp_path / "new" / "results.json"
    files.write_json({"psnr_y": 30.5}, str(path), indent=1)
    assert json.loads(path.read_text()) == {"psnr_y": 30.5}
    files.write_text(str(path), "second")
    assert path.read_text() == "second" and os.listdir(path.parent) == ["results.json"]


@pytest.mark.parametrize("write", [
    lambda path: files.write_text(path, "new text " * 100),
    lambda path: files.write_json({"psnr_y": [1.0] * 100}, path),
    lambda path: common.write_json({"Set5": {"psnr_y": 30.0}}, path),  # --output_json
], ids=["write_text", "write_json", "output_json"])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, full_disk, write):
    path = tmp_path / "results.json"
    path.write_text('{"old": true}')
    with pytest.raises(OSError, match="No space left on device"):
        write(str(path))
    assert path.read_text() == '{"old": true}'
    assert os.listdir(tmp_path) == ["results.json"]


def test_a_failed_first_write_leaves_nothing(tmp_path, full_disk):
    with pytest.raises(OSError, match="No space left on device"):
        files.write_json({"a": 1}, str(tmp_path / "scan_cache.json"))
    assert os.listdir(tmp_path) == []


def test_write_atomically_passes_the_suffix_and_cleans_up(tmp_path):
    seen = []

    def write_then_fail(temp):
        seen.append(temp)
        with open(temp, "wb") as f:
            f.write(b"partial")
        raise ValueError("writer failed")

    with pytest.raises(ValueError, match="writer failed"):
        files.write_atomically(str(tmp_path / "generator.keras"), write_then_fail, ".keras")
    assert seen[0].endswith(".keras") and os.path.dirname(seen[0]) == str(tmp_path)
    assert os.listdir(tmp_path) == []
