"""Code reads the environment only through settings: a deployment that sets every setting
sets everything a service reads."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.deploy.manifests import ENV_NAMES, ROOT, STANDARD_PREFIXES


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ"
            and isinstance(node.value, ast.Name) and node.value.id == "os")


def environment_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, name) of every literal variable name read from `os.environ` / `os.getenv`."""
    reads = []
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Subscript) and _is_environ(node.value):
            name = node.slice
        elif isinstance(node, ast.Call) and node.args and isinstance(node.func, ast.Attribute):
            func = node.func
            environ_get = func.attr == "get" and _is_environ(func.value)
            getenv = (func.attr == "getenv" and isinstance(func.value, ast.Name)
                      and func.value.id == "os")
            if environ_get or getenv:
                name = node.args[0]
        elif isinstance(node, ast.Compare) and any(_is_environ(c) for c in node.comparators):
            name = node.left
        if isinstance(name, ast.Constant) and isinstance(name.value, str):
            reads.append((node.lineno, name.value))
    return reads


def test_the_scanner_finds_every_kind_of_read() -> None:
    source = ("import os\nos.environ['A']\nos.environ.get('B')\nos.getenv('C', 'x')\n"
              "'D' in os.environ\nos.environ.setdefault\n")
    assert [name for _, name in environment_reads(ast.parse(source))] == ["A", "B", "C", "D"]


def test_every_variable_the_code_reads_is_a_setting() -> None:
    strays = []
    for package in ("shared", "services"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, name in environment_reads(ast.parse(path.read_text("utf-8"))):
                if name not in ENV_NAMES and not name.startswith(STANDARD_PREFIXES):
                    strays.append(f"{Path(path).relative_to(ROOT)}:{line} reads {name}")
    assert not strays, "environment variables that are not settings:\n" + "\n".join(strays)
