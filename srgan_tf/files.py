"""Files written whole or not at all: a temporary name in the same folder, then a rename."""

import contextlib
import json
import os


@contextlib.contextmanager
def written_whole(path, overwrite=True, suffix=""):
    """Yields a temporary path in `path`'s folder (created if missing) to write the file to.

    When the block succeeds the temporary file is renamed to `path`, so readers never see a
    partial file; when it fails the temporary file is removed and `path` is left as it was.

    Args:
      path: the file to write.
      overwrite: when False, an existing `path` raises FileExistsError (checked before the
        block runs and again before the rename).
      suffix: ending of the temporary name, for writers that check it (Keras wants ".keras").
    Yields:
      str, the temporary path (a hidden name ending in .tmp + `suffix`).
    """
    directory, name = os.path.split(os.path.abspath(path))

    def refuse():
        if not overwrite and os.path.lexists(path):
            raise FileExistsError(f"{path} exists")
    refuse()
    os.makedirs(directory, exist_ok=True)
    temp = os.path.join(directory, f".{name}.{os.getpid()}.tmp{suffix}")
    try:
        yield temp
        refuse()
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def write_atomically(path, write, suffix=""):
    """Calls `write(temp)` for a temporary name beside `path`, then renames it to `path`.

    `written_whole` for writers that take a path, e.g. `keras.Model.save`: `path` keeps its old
    content (or stays absent) until the new one is complete, and a failing `write` leaves no
    temporary file behind.
    """
    with written_whole(path, suffix=suffix) as temp:
        write(temp)


def write_text(path, text):
    """Writes `text` to `path` (creating its folder) so that readers never see a partial file."""
    with written_whole(path) as temp, open(temp, "w", encoding="utf-8") as f:
        f.write(text)


def write_json(obj, path, indent=None):
    """Writes `obj` as JSON to `path`, like `write_text`."""
    write_text(path, json.dumps(obj, indent=indent))
