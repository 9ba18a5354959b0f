"""The one line of a TensorFlow error that says what went wrong, for the CLIs' error lines."""

import re

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FUNCTION_NODE = re.compile(r"^\{\{function_node [^}]*\}\}\s*")
# Keras wraps an op's error in a layer's eager call: this line, the op's message, the arguments.
_KERAS_CALL = "Exception encountered when calling "


def first_line(error):
    """Returns the first line of `error`'s message that names the cause.

    Skips Keras's "Exception encountered when calling Conv2D.call()." wrapper and drops
    TensorFlow's "{{function_node ...}}" prefix and terminal colour codes; an empty message gives
    the error's type name.
    """
    message = getattr(error, "message", None) or str(error)
    for line in _ANSI.sub("", message).splitlines():
        line = _FUNCTION_NODE.sub("", line.strip())
        if line and not line.startswith(_KERAS_CALL):
            return line
    return type(error).__name__
