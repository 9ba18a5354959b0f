"""Tests of the package layout: the library never imports the CLI, imports form no cycle, and
the `python -m` packages start without TensorFlow and forward monkeypatching to their submodules."""

import ast
import os
import subprocess
import sys

from srgan_tf import facade, gpu_check, upscale

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "srgan_tf")
COMMANDS = ("evaluate", "upscale", "bench", "reference", "gpu_check", "prepare")


def _modules():
    """Returns {dotted module name: parsed ast} for every .py file under srgan_tf/."""
    modules = {}
    for folder, _, names in os.walk(PACKAGE):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, REPO)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                with open(path, encoding="utf-8") as f:
                    modules[".".join(parts)] = ast.parse(f.read(), path)
    return modules


def _imports(tree, modules):
    """The srgan_tf modules a module imports (anywhere in it, not only at the top)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in modules else node.module)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "export"
              and len(node.args) == 2
              and isinstance(node.args[1], ast.Dict)):  # facade.export(__name__, {sub: names})
            found.update(f"__package__.{key.value}" for key in node.args[1].keys)
    return found


def _graph():
    modules = _modules()
    graph = {}
    for name, tree in modules.items():
        targets = {t.replace("__package__", name) for t in _imports(tree, modules)}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_library_never_imports_the_cli():
    offenders = sorted(
        f"{name} imports {target}" for name, targets in _graph().items()
        for target in targets
        if target.startswith("srgan_tf.cli") and not name.startswith("srgan_tf.cli")
        and not name.endswith(".__main__"))
    assert not offenders, offenders


def test_imports_form_no_cycle():
    graph = _graph()
    state, path = {}, []

    def visit(name):
        state[name] = "open"
        path.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                raise AssertionError("import cycle: "
                                     + " -> ".join(path[path.index(target):] + [target]))
            if target not in state:
                visit(target)
        state[name] = "done"
        path.pop()

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_every_command_package_has_a_main_and_starts_without_tensorflow():
    for command in COMMANDS:
        assert os.path.isfile(os.path.join(PACKAGE, command, "__main__.py")), command
    probe = ("import sys\n"
             + "".join(f"import srgan_tf.{command}\n" for command in COMMANDS)
             + "print(sorted(m for m in sys.modules if m.split('.')[0] in "
               "('tensorflow', 'keras')))\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout[-500:]


def test_package_names_are_read_and_changed_in_their_submodule(monkeypatch):
    from srgan_tf.upscale import tiling  # pylint: disable=import-outside-toplevel
    assert upscale.resolve_tile is tiling.resolve_tile
    with monkeypatch.context() as patch:
        patch.setattr(upscale, "WHOLE_IMAGE_PIXELS", 0)
        assert tiling.WHOLE_IMAGE_PIXELS == 0
        assert tiling.resolve_tile("auto", 1, 1) == tiling.DEFAULT_TILE
        patch.delattr(gpu_check, "CPU_NOTE")
        assert not hasattr(sys.modules["srgan_tf.gpu_check.checks"], "CPU_NOTE")
    assert tiling.WHOLE_IMAGE_PIXELS == 384 * 384 and gpu_check.CPU_NOTE.startswith("no GPU")
    assert "upscale_file" in dir(upscale)


def test_export_refuses_a_name_owned_twice():
    try:
        facade.export("srgan_tf.upscale", {"tiling": ("DEFAULT_TILE",), "png": ("DEFAULT_TILE",)})
    except ValueError as e:
        assert "'DEFAULT_TILE' exported twice" in str(e)
    else:
        raise AssertionError("no ValueError")
