"""Packages whose public names load on first use: `python -m srgan_tf.X --help` without TensorFlow.

`srgan_tf.upscale`, `.evaluate`, `.bench`, `.reference`, `.gpu_check` and `.prepare` are packages:
`__main__.py` runs the command line (srgan_tf/cli/X.py) and the library lives in submodules split by
concern. The package's `__init__.py` calls `export`, which makes the package a view of those
submodules: reading `srgan_tf.upscale.upscale_file` imports `srgan_tf.upscale.image_io` on first
use, and assigning or deleting it (as `monkeypatch.setattr(upscale, "upscale_file", f)` does)
changes it in the submodule that owns it, so that module's own calls see the new value (and undoing
the monkeypatch restores it there). `python -m` needs the laziness: running `__main__.py` imports
the package first, and a package that imported its submodules eagerly would import TensorFlow before
the flags are parsed. `srgan_tf.serving` and `srgan_tf.trainer` use it too, so their callers keep
one name for their pieces.
"""

import importlib
import sys
import types


def _forwarding(owner, name):
    """A property reading, assigning and deleting `name` in the module named `owner`."""

    def get(_):
        return getattr(importlib.import_module(owner), name)

    def set_(_, value):
        setattr(importlib.import_module(owner), name, value)

    def delete(_):
        delattr(importlib.import_module(owner), name)

    return property(get, set_, delete, f"{owner}.{name}")


def export(package, owners):
    """Makes `package` a view of the names its submodules own, each imported on first use.

    Each name becomes a property of the package module's own class (a data descriptor), so
    reading, assigning and deleting it go to the owning submodule, and so does undoing a
    monkeypatch.

    Args:
      package: the package's `__name__` ("srgan_tf.upscale").
      owners: dict submodule name -> the names it owns and the package exports
        ({"tiling": ("upscale_array", ...)}).
    """
    table = {}
    for submodule, names in owners.items():
        for name in names:
            if name in table or name in owners:
                raise ValueError(f"{package}: {name!r} exported twice or named like a submodule")
            table[name] = _forwarding(f"{package}.{submodule}", name)
    names = sorted(table)
    table["__dir__"] = lambda self: sorted(set(self.__dict__) | set(names))
    module = sys.modules[package]
    table["__module__"] = package
    module.__class__ = type("Facade", (types.ModuleType,), table)
