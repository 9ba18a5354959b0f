"""What every command-line entry point shares: flag parsing and one-line errors (exit code 2)."""

import json
import os
import sys

from absl import app, flags

USAGE_EXIT_CODE = 2


def fail(message):
    """Prints `error: <message>` as one line on stderr and exits with code 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(USAGE_EXIT_CODE)


def _parse_flags(argv):
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        fail(str(e))


def run(main, module=None):
    """Runs `main(argv)` under absl with flag errors reported as one line, exit code 2.

    Args:
      main: function argv -> None.
      module: name of the module that defined the command's flags; absl's --help lists only the
        main script's flags, so these are adopted as its key flags.
    """
    if module is not None:
        for flag in flags.FLAGS.flags_by_module_dict().get(module, []):
            flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    app.run(main, flags_parser=_parse_flags)


def write_json(results, path):
    """Writes `results` to `path` as JSON, under a temporary name then renamed (never half-written)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temp = f"{path}.{os.getpid()}.tmp"
    with open(temp, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    os.replace(temp, path)
