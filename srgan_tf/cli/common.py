"""What every command-line entry point shares: flag parsing and one-line errors (exit code 2)."""

import sys

from absl import app, flags, logging

from srgan_tf import files

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
    """Writes a command's `--output_json` (never half-written) and logs it."""
    files.write_json(results, path, indent=2)
    logging.info("wrote %s", path)
