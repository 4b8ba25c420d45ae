"""The layout's rules, checked on every test run (and so in CI): imports point down the layers of
docs/architecture.md (import-linter, contracts in pyproject.toml), and ruff's lint and import order pass."""
import ast
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



QUIET_LAYERS = ("models", "data", "metrics", "runtime", "util")  # below the run machinery: they never print


def print_calls(path):
    """Line numbers of print(...) calls and sys.stdout/sys.stderr writes in a Python file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name in ("print", "sys.stdout.write", "sys.stderr.write"):
                found.append(node.lineno)
    return found


def test_layers_below_the_run_machinery_log_instead_of_printing():
    """docs/architecture.md's output rule: stdout is the run's record, written by the entry points,
    the options and engine/; everything below them returns text or goes through util.log.logger."""
    printing = [f"{path.relative_to(REPO_ROOT)}:{line}" for folder in QUIET_LAYERS
                for path in sorted((REPO_ROOT / folder).rglob("*.py")) for line in print_calls(path)]
    assert not printing, f"print or direct stream writes below engine/: {printing}"
