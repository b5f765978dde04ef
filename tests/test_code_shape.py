"""The code stays readable: no Python function over 80 lines, no kernel function over 150.

A long function is where a second responsibility hides; the limits are the project's
(docs/design.md, "Where a new solver goes"). Docstrings count: a docstring that long
belongs in the user guide.
"""
import ast
import os
import re

import pytest

import mfcore

PACKAGE = os.path.dirname(os.path.abspath(mfcore.__file__))
KERNELS = os.path.join(PACKAGE, "_kernels")
PYTHON_LIMIT = 80
KERNEL_LIMIT = 150


def _files(folder, suffixes):
    for root, _, names in os.walk(folder):
        for name in sorted(names):
            if name.endswith(suffixes):
                yield os.path.join(root, name)


def _python_functions(path):
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.lineno, node.end_lineno - node.lineno + 1


def _cython_functions(lines):
    """(name, first line, length) of each def/cdef/cpdef function: its indented block."""
    signature = re.compile(r"(?:c?p?def)\s+(?:inline\s+)?[\w\s\*\[\],]*?(\w+)\s*\(")
    for i, line in enumerate(lines):
        match = signature.match(line)
        if not match or re.match(r"cdef\s+(extern|class|struct|enum|packed|union)\b", line):
            continue
        end = i + 1
        while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t)"):
            end += 1
        while not lines[end - 1].strip():
            end -= 1
        yield match.group(1), i + 1, end - i


def _c_functions(lines):
    """(first line text, first line, length) of each top-level brace block that is code."""
    depth, start = 0, None
    for i, line in enumerate(lines):
        code = line.split("//")[0]
        if depth == 0 and "{" in code and not code.lstrip().startswith("#"):
            start = i
        depth += code.count("{") - code.count("}")
        if depth == 0 and start is not None:
            head = lines[start]
            if not re.search(r"\b(struct|enum|union|typedef|extern)\b|=\s*\{", head):
                yield head.strip()[:60], start + 1, i - start + 1
            start = None


def test_no_python_function_is_over_80_lines():
    long = [f"{os.path.relpath(path, PACKAGE)}:{line} {name} ({n} lines)"
            for path in _files(PACKAGE, (".py",)) if "_kernels" not in path
            for name, line, n in _python_functions(path) if n > PYTHON_LIMIT]
    assert not long, "functions over 80 lines: " + "; ".join(long)


def test_no_kernel_function_is_over_150_lines():
    sources = list(_files(KERNELS, (".pyx", ".h")))
    if not any(s.endswith(".pyx") for s in sources):
        pytest.skip("the kernels' sources are not installed (a wheel holds only the compiled modules)")
    long, seen = [], 0
    for path in sources:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().split("\n")
        scan = _cython_functions if path.endswith(".pyx") else _c_functions
        functions = list(scan(lines))
        seen += len(functions)
        long += [f"{os.path.basename(path)}:{line} {name} ({n} lines)"
                 for name, line, n in functions if n > KERNEL_LIMIT]
    assert seen > 50   # the scan found the kernels' functions
    assert not long, "kernel functions over 150 lines: " + "; ".join(long)


def test_the_scanners_see_long_functions(tmp_path):
    # the checks above can fail: a made-up long function is seen by each scanner
    body = ["    x = 1"] * 200
    assert [n for _, _, n in _cython_functions(["cdef void f(int a) noexcept nogil:"] + body)] == [201]
    c = ["static void f(int a) {"] + ["    a += 1;"] * 200 + ["}"]
    assert [n for _, _, n in _c_functions(c)] == [202]
    tree = "def f():\n" + "\n".join(body) + "\n"
    path = tmp_path / "long.py"
    path.write_text(tree, encoding="utf-8")
    assert [n for _, _, n in _python_functions(path)] == [201]
