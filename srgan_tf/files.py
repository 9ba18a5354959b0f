"""Files written whole or not at all: a temporary name in the same folder, then a rename."""

import json
import os


def write_atomically(path, write, suffix=""):
    """Calls `write(temp)` for a temporary name beside `path`, then renames it to `path`.

    Readers never see a partial file: `path` keeps its old content (or stays absent) until the
    new one is complete, and a failing `write` leaves no temporary file behind.

    Args:
      path: the file to write; its folder is created.
      write: function str -> None writing the whole file at the path it is given.
      suffix: ending of the temporary name, for writers that check it (Keras wants ".keras").
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temp = f"{path}.{os.getpid()}.tmp{suffix}"
    try:
        write(temp)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise


def write_text(path, text):
    """Writes `text` to `path` (creating its folder) so that readers never see a partial file."""

    def write(temp):
        with open(temp, "w", encoding="utf-8") as f:
            f.write(text)

    write_atomically(path, write)


def write_json(obj, path, indent=None):
    """Writes `obj` as JSON to `path`, like `write_text`."""
    write_text(path, json.dumps(obj, indent=indent))
