"""Pytest hooks: under CI=true a skipped test fails the run.

A skip on a developer's machine says "this needs something you don't have" (the shared benchmark
images, an extra); in CI it would hide an untested guarantee. `tests/conftest.py` imports these
hooks; `scripts/test.sh` passes `-rs`, so every skip reason is printed either way.
"""

import os

import pytest


def ci_enabled():
    """Returns True when the CI environment variable says this is a CI run (true, 1 or yes)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _skipped(config):
    """Returns the skip reports (test and collection skips, not xfails) of this session."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    return reporter.stats.get("skipped", []) if reporter is not None else []


def pytest_sessionfinish(session, exitstatus):
    """Under CI, turns a successful session with skips into a failing one (exit status 1)."""
    del exitstatus  # session.exitstatus is the one that counts
    passing = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)  # the latter: all skipped
    if ci_enabled() and session.exitstatus in passing and _skipped(session.config):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Says why the run failed when skips were turned into a failure."""
    del exitstatus
    skipped = _skipped(config)
    if ci_enabled() and skipped:
        terminalreporter.write_line(
            f"CI=true: {len(skipped)} skipped test(s) count as failures (pytest -rs lists the "
            "reasons)", red=True, bold=True)
