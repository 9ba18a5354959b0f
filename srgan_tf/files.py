"""Files written whole or not at all: a temporary name in the same folder, then a rename."""

import json
import os


def write_text(path, text):
    """Writes `text` to `path` (creating its folder) so that readers never see a partial file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temp = f"{path}.{os.getpid()}.tmp"
    with open(temp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(temp, path)


def write_json(obj, path, indent=None):
    """Writes `obj` as JSON to `path`, like `write_text`."""
    write_text(path, json.dumps(obj, indent=indent))
