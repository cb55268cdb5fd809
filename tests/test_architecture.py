"""The layout rules of the code, checked on its source (issue 10), for every module of ``acav1m_hf/`` and ``curation/``:

* no import cycle among the project's modules, and ``acav1m_hf`` never imports ``curation`` (curation builds on the
  release package, not the other way round). Every import statement counts, those inside functions and under
  ``if TYPE_CHECKING:`` too: a lazy import is still a dependency, it only hides a cycle;
* no module over `MAX_LINES` lines: a longer one does more than one job, so it is split, never exempted;
* no HTML in Python strings: pages are Jinja2 templates (autoescaped), markdown goes through markdown-it-py.

An import names the module it names: ``from acav1m_hf.schema.fields import X`` depends on ``acav1m_hf.schema.fields``,
not on ``acav1m_hf.schema`` (whose ``__init__`` Python runs first, but that is packaging, not design);
``from acav1m_hf import release`` depends on the module ``acav1m_hf.release``.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("acav1m_hf", "curation")
MAX_LINES = 400

_ELEMENTS = (
    "html|head|body|div|span|p|a|svg|script|style|table|thead|tbody|tr|td|th|ul|ol|li|h[1-6]|img|section|article|nav"
    "|header|footer|main|button|input|form|label|select|option|pre|code|small|strong|em|br|hr|meta|link|title|canvas"
    "|iframe|figure|figcaption|details|summary|template"
)
_MEDIA = "video|audio|source"
HTML = re.compile(
    rf"<!doctype|</({_ELEMENTS}|{_MEDIA})\s*>|<({_ELEMENTS})(\s|/?>)|<({_MEDIA})\s",
    re.IGNORECASE,
)
"""An HTML tag in a string: a doctype, a closing tag, or an opening tag of an HTML element. A model's prompt tokens
are not HTML: Video-LLaVA's bare ``<video>`` and ``</s>``, a reasoning model's ``</think>`` (an HTML ``<video>``,
``<audio>`` or ``<source>`` always has attributes, ``src`` at least)."""


@cache
def modules() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name (a package by its own name, for its ``__init__``)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _project_module(name: str) -> str | None:
    """The project module that an imported dotted name is or lies in (``curation.x.Y`` -> ``curation.x``), if any."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in modules():
            return ".".join(parts)
        parts.pop()
    return None


@cache
def imports(module: str) -> frozenset[str]:
    """The project modules that ``module`` imports, from all its import statements wherever they are."""
    path = modules()[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    named: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .x import y
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                named.add(submodule if submodule in modules() else source)
    return frozenset(filter(None, map(_project_module, named))) - {module}


def cycles() -> list[list[str]]:
    """One import cycle (``[a, b, ..., a]``) in each strongly connected group of modules that has one (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(imports(node)):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(modules()):
        if module not in index:
            visit(module)
    return [_cycle_in(set(group)) for group in groups]


def _cycle_in(group: set[str]) -> list[str]:
    """A shortest import path from the group's first module back to itself, within the group (breadth first)."""
    start = min(group)
    paths = {target: [start, target] for target in sorted(imports(start) & group)}
    queue = list(paths)
    while start not in paths:
        node = queue.pop(0)
        for target in sorted(imports(node) & group):
            if target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    return paths[start]


def test_the_project_has_no_import_cycle():
    found = cycles()
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


def test_acav1m_hf_never_imports_curation():
    wrong = [
        f"{module} imports {target}"
        for module in sorted(modules())
        if module.split(".")[0] == "acav1m_hf"
        for target in sorted(imports(module))
        if target.split(".")[0] == "curation"
    ]
    assert not wrong, "\n".join(wrong)


def test_no_module_is_over_the_line_limit():
    long = {
        path.relative_to(ROOT).as_posix(): lines
        for path in modules().values()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by job): " + ", ".join(
        f"{name} ({lines})" for name, lines in sorted(long.items())
    )


def _docstrings(tree: ast.Module) -> set[int]:
    """The ids of the docstring nodes (module, class, function): documentation, which may show a tag in prose."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def test_no_html_in_python_strings():
    found = []
    for path in modules().values():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):  # f-strings too: their literal parts are Constant nodes
            if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)) and id(node) not in docstrings:
                text = node.value if isinstance(node.value, str) else node.value.decode("latin-1")
                if match := HTML.search(text):
                    found.append(f"{path.relative_to(ROOT).as_posix()}:{node.lineno}: {match.group(0)!r}")
    assert not found, "HTML in Python strings (use a Jinja2 template):\n" + "\n".join(found)


def test_the_rules_see_what_they_check():
    # the walk finds the modules and the edges it is meant to (a rule that sees nothing passes for nothing)
    assert {"acav1m_hf.schema", "acav1m_hf.schema.members", "curation.cli", "acav1m_hf.cli"} <= set(modules())
    assert "acav1m_hf.cli" in imports("curation.cli")
    assert "acav1m_hf.release" in imports("acav1m_hf.validate")  # `from acav1m_hf import release`
    assert "acav1m_hf.schema.fields" in imports("acav1m_hf.schema.members")
    assert HTML.search("<div class='x'>") and HTML.search("</p>") and HTML.search('<svg viewBox="0 0 1 1">')
    assert not HTML.search("a < b and c > d") and not HTML.search("--output <path>")
