"""The layout's rules, checked on every test run (and so in CI): imports point down the layers of
docs/architecture.md (import-linter, contracts in pyproject.toml), and ruff's lint and import order pass."""
import subprocess
import sys

from conftest import REPO_ROOT


def run_tool(*args):
    return subprocess.run([sys.executable, "-c", *args], cwd=REPO_ROOT, capture_output=True, text=True)


def test_imports_point_down_the_layers():
    result = run_tool("import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_ruff_finds_nothing():
    result = run_tool("import sys, runpy; sys.argv = ['ruff', 'check', '.']; runpy.run_module('ruff', run_name='__main__')")
    assert result.returncode == 0, result.stdout + result.stderr

