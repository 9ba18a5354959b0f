"""The CI rule of tests/ci_skips.py: under CI=true a skip fails the run, elsewhere it does not."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


TINY_SUITE = '''
import pytest

def test_runs():
    assert 1 + 1 == 2

def test_needs_data():
    pytest.skip("../shared/data/Set5 not found")

@pytest.mark.xfail(reason="known bug", strict=True)
def test_known_bug():
    assert False
'''


def run_pytest(folder, ci, *args):
    """Runs pytest with the CI hooks on `folder` in a fresh process; returns (exit code, output)."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "tests.ci_skips", "-p", "no:cacheprovider",
         "--rootdir", str(folder), "-c", os.devnull, *args, str(folder)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    return result.returncode, result.stdout + result.stderr


@pytest.fixture
def tiny_suite(tmp_path):
    (tmp_path / "test_tiny.py").write_text(TINY_SUITE)
    return tmp_path


def test_skip_fails_the_run_under_ci(tiny_suite):
    code, output = run_pytest(tiny_suite, "true")
    assert code == pytest.ExitCode.TESTS_FAILED, output
    assert "../shared/data/Set5 not found" in output  # the reason, thanks to -rs
    assert "CI=true: 1 skipped test(s) count as failures" in output


@pytest.mark.parametrize("ci", [None, "false"])
def test_skip_passes_outside_ci(tiny_suite, ci):
    code, output = run_pytest(tiny_suite, ci)
    assert code == pytest.ExitCode.OK, output
    assert "../shared/data/Set5 not found" in output
    assert "count as failures" not in output


def test_module_level_skip_fails_under_ci(tmp_path):
    (tmp_path / "test_module.py").write_text(
        'import pytest\npytest.importorskip("no_such_module_here")\ndef test_x():\n    pass\n')
    code, output = run_pytest(tmp_path, "true")
    assert code == pytest.ExitCode.TESTS_FAILED, output
    assert "no_such_module_here" in output


def test_ci_without_skips_passes(tmp_path):
    (tmp_path / "test_ok.py").write_text("def test_ok():\n    assert True\n")
    code, output = run_pytest(tmp_path, "true")
    assert code == pytest.ExitCode.OK, output


def test_rule_is_active_in_this_suite(request):
    from tests import ci_skips
    for hook, function in [(request.config.hook.pytest_sessionfinish, ci_skips.pytest_sessionfinish),
                           (request.config.hook.pytest_terminal_summary, ci_skips.pytest_terminal_summary)]:
        assert function in [impl.function for impl in hook.get_hookimpls()]
