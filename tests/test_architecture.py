"""The layout's rules, checked on every test run (and so in CI): imports point down the layers of
docs/architecture.md (import-linter, contracts in pyproject.toml), ruff's lint and import order pass,
and no product file grows past about 400 lines without saying why in its docstring."""
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
