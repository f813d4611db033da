"""Measure the shape of the ``provisioning`` package: what the architecture tests and the docs quote.

Run ``python3 tools/architecture.py [--json]`` from the repository root. It reports:
- modules over 400 lines (and the largest ones),
- import cycles between modules of ``provisioning/`` (strongly connected components of the
  module import graph; imports inside functions count too, ``TYPE_CHECKING`` imports do not),
- the modules that import ``requests`` or ``urllib3``,
- functions (and methods) longer than 60 lines.

Only the standard library's ``ast`` is used, so it runs anywhere the code does.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "provisioning"
LONG_MODULE = 400
LONG_FUNCTION = 60


@dataclass
class Module:
    name: str
    path: Path
    lines: int
    imports: set[str] = field(default_factory=set)  # provisioning modules imported
    third_party: set[str] = field(default_factory=set)  # top-level names of other imports
    long_functions: list[tuple[str, int]] = field(default_factory=list)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(mod: Module, node: ast.ImportFrom, known: set[str]) -> list[str]:
    """The provisioning modules a ``from … import …`` names (a name may be a submodule)."""
    if node.level:
        base = mod.name.split(".")
        is_package = mod.path.name == "__init__.py"
        base = base if is_package else base[:-1]
        base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
        target = ".".join([*base, node.module] if node.module else base)
    else:
        target = node.module or ""
    if not (target == PACKAGE or target.startswith(PACKAGE + ".")):
        return []
    out = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        out.append(sub if sub in known else target)
    return out


def _walk(tree: ast.AST, type_checking: bool = False):
    """All nodes except those under ``if TYPE_CHECKING:`` (unless ``type_checking``)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not type_checking and isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def scan(root: Path = ROOT, *, type_checking: bool = False) -> dict[str, Module]:
    """Every module of the package with its imports; ``type_checking`` counts annotation-only imports."""
    pkg = root / PACKAGE
    files = sorted(p for p in pkg.rglob("*.py") if "__pycache__" not in p.parts)
    mods = {}
    for path in files:
        text = path.read_text(encoding="utf-8")
        mods[module_name(path, root)] = Module(module_name(path, root), path, len(text.splitlines()))
    known = set(mods)
    for mod in mods.values():
        tree = ast.parse(mod.path.read_text(encoding="utf-8"), str(mod.path))
        for node in _walk(tree, type_checking):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                        mod.imports.add(alias.name if alias.name in known else PACKAGE)
                    else:
                        mod.third_party.add(alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom):
                names = _resolve(mod, node, known)
                if names:
                    mod.imports.update(n for n in names if n in known)
                elif not node.level and node.module:
                    mod.third_party.add(node.module.split(".")[0])
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > LONG_FUNCTION:
                    mod.long_functions.append((node.name, length))
        mod.imports.discard(mod.name)
    return mods


def _parents(name: str) -> list[str]:
    """Importing ``a.b.c`` runs ``a/__init__`` and ``a.b/__init__`` first."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def cycles(mods: dict[str, Module]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted.

    An edge goes from a module to each module it imports. Package ``__init__`` files that only
    exist as parents are not edges: ``from .oci import remote`` is an edge to ``oci.remote``.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(mods[v].imports):
            if w not in mods:
                continue
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(mods):
        if v not in index:
            strongconnect(v)
    return sorted(out)


def report(root: Path = ROOT) -> dict[str, object]:
    mods = scan(root)
    long_modules = sorted(((m.name, m.lines) for m in mods.values() if m.lines > LONG_MODULE), key=lambda x: -x[1])
    http = sorted(m.name for m in mods.values() if m.third_party & {"requests", "urllib3"})
    functions = sorted(
        ((f"{m.name}.{fn}", n) for m in mods.values() for fn, n in m.long_functions), key=lambda x: (-x[1], x[0])
    )
    return {
        "modules": len(mods),
        "lines": sum(m.lines for m in mods.values()),
        "modules_over_400_lines": long_modules,
        "import_cycles": cycles(mods),
        "import_cycles_with_type_checking": cycles(scan(root, type_checking=True)),
        "modules_importing_requests": http,
        "functions_over_60_lines": functions,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    data = report()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"{data['modules']} modules, {data['lines']} lines")
    print(f"\nmodules over {LONG_MODULE} lines: {len(data['modules_over_400_lines'])}")
    for name, n in data["modules_over_400_lines"]:
        print(f"  {n:5d}  {name}")
    print(f"\nimport cycles: {len(data['import_cycles'])}")
    for comp in data["import_cycles"]:
        print("  " + " <-> ".join(comp))
    print(f"import cycles counting TYPE_CHECKING imports: {len(data['import_cycles_with_type_checking'])}")
    for comp in data["import_cycles_with_type_checking"]:
        print("  " + " <-> ".join(comp))
    print(f"\nmodules importing requests/urllib3: {len(data['modules_importing_requests'])}")
    for name in data["modules_importing_requests"]:
        print(f"  {name}")
    print(f"\nfunctions over {LONG_FUNCTION} lines: {len(data['functions_over_60_lines'])}")
    for name, n in data["functions_over_60_lines"]:
        print(f"  {n:5d}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
