"""The layout's rules, checked on every test run (and so in CI): imports point down the layers of
docs/architecture.md (import-linter, contracts in pyproject.toml), ruff's lint and import order pass,
no product file grows past about 400 lines without saying why in its docstring, and the layers
below engine/ never print (the output rule)."""
import ast
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT

MAX_LINES = 400
LENGTH_REASON = "Longer than 400 lines because"  # the docstring phrase that allows a longer file
PRODUCT_FOLDERS = ("options", "engine", "models", "data", "metrics", "runtime", "util", "scripts", "datasets")


def run_tool(*args):
    return subprocess.run([sys.executable, "-c", *args], cwd=REPO_ROOT, capture_output=True, text=True)


def test_imports_point_down_the_layers():
    result = run_tool("import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_ruff_finds_nothing():
    result = run_tool("import sys, runpy; sys.argv = ['ruff', 'check', '.']; runpy.run_module('ruff', run_name='__main__')")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_entry_points_start_without_torchvision_or_scipy_linalg():
    # Their imports cost every start of test.py and train.py about 1.4 s and 0.15 s of CPU (2.5 s of wall
    # clock on a 2-core AMD EPYC); the metrics that need them import them when they run.
    result = run_tool("import sys, test, train; print(sorted(set(sys.modules) & {'torchvision', 'scipy.linalg'}))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


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


def product_files():
    yield from (REPO_ROOT / name for name in ("train.py", "test.py"))
    for folder in PRODUCT_FOLDERS:
        yield from sorted((REPO_ROOT / folder).rglob("*.py"))


def test_no_product_file_is_long_without_a_stated_reason():
    too_long = []
    for path in product_files():
        text = path.read_text(encoding="utf-8")
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if text.count("\n") > MAX_LINES and LENGTH_REASON not in docstring:
            too_long.append(f"{Path(path).relative_to(REPO_ROOT)} ({text.count(chr(10))} lines)")
    assert not too_long, f"over {MAX_LINES} lines without '{LENGTH_REASON} ...' in the docstring: {too_long}"
