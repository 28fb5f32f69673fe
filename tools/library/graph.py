"""Read the library package into symbols: digests of their syntax and the names they use.

The generated library (``dlbook/*.py``) is read into top-level *symbols*: each function,
class (with all its methods, and any function attached to it by ``@add_to_class(C)``) and
assigned name, plus one ``<module>`` symbol per module for its other top-level statements.
Each symbol has a digest of its normalised syntax tree (docstrings, comments and layout
do not count, so a moved section or a reworded docstring re-runs nothing) and the names it
refers to: bases, decorators, names used in its body, as found by
:func:`tools.library.names.uses` in the symbol's own source text (so that names other
statements of the module define count as outside ones). They are resolved through the
imports between library modules by :mod:`tools.library.deps`, which closes over them.
"""

from __future__ import annotations

import ast
import copy
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tools.core.memo import FileMemo
from tools.library.names import Chain, add_to_class_target, attribute_chain, first_line, uses

PREAMBLE = "<module>"
SymbolId = tuple[str, str]  # (module, name)


@dataclass(frozen=True)
class Binding:
    """What a name in a module's namespace stands for."""

    # "symbol": defined in ``module`` (``name`` is the symbol); "import": ``name`` of another
    # library module; "module": the library module itself; "star": every public name of
    # ``module``; "external": anything from outside the library
    kind: str
    module: str
    name: str = ""


@dataclass
class Module:
    """One library module: its symbols' digests and references, and its namespace."""

    name: str
    is_package: bool = False
    digests: dict[str, str] = field(default_factory=dict)
    refs: dict[str, set[Chain]] = field(default_factory=dict)
    bindings: list[tuple[str, Binding]] = field(default_factory=list)  # in source order
    exported: tuple[str, ...] | None = None  # a literal ``__all__``
    imports: set[str] = field(default_factory=set)  # library modules it imports
    attached: dict[str, set[str]] = field(default_factory=dict)  # class name -> add_to_class


@dataclass
class Library:
    """The parsed library package (``dlbook`` by default)."""

    package: str
    modules: dict[str, Module]

    def digest(self, symbol: SymbolId) -> str:
        return self.modules[symbol[0]].digests[symbol[1]]


def normalised_digest(node: ast.AST) -> str:
    """SHA-256 of ``node``'s syntax tree without docstrings, positions or comments."""
    node = copy.deepcopy(node)
    for sub in ast.walk(node):
        body = getattr(sub, "body", None)
        if (isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module))
                and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            sub.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(node).encode()).hexdigest()[:16]


def references(texts: Iterable[str]) -> set[Chain]:
    """Free names and attribute chains that the top-level statements (or notebook cells)
    ``texts`` use, from :func:`tools.library.names.uses`; chains through a function's
    imports start with ``FROM`` or ``IMPORT``, resolved by the caller.

    Each text is analysed on its own: at the top level a name counts even where the
    statements bind it, so this finds what analysing them together would. A text that
    Python rejects (a misplaced ``global``: it could not run) adds nothing."""
    found: set[Chain] = set()
    for text in texts:
        try:
            found.update(use.chain for use in uses(text))
        except SyntaxError:
            continue
    return found


def absolute_module(module: str, level: int, target: str, is_package: bool) -> str:
    """The absolute name of ``from <level dots><target> import`` inside ``module``."""
    if not level:
        return target
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def statement_text(lines: list[str], node: ast.stmt) -> str:
    """The source of the top-level statement ``node``, decorators included, from the
    ``lines`` of its module (split on newlines only, as ``ast`` counts them)."""
    first, last = first_line(node), node.end_lineno or node.lineno
    part = [line.encode() for line in lines[first - 1:last]]
    part[-1] = part[-1][:node.end_col_offset]  # offsets count UTF-8 bytes
    part[0] = part[0][0 if first < node.lineno else node.col_offset:]
    return b"\n".join(part).decode()


def _stored_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)
            and isinstance(n.ctx, ast.Store)}


def parse_module(name: str, source: str, package: str, is_package: bool = False,
                 symbols: bool = True) -> Module:
    """Read one library module's symbols, references and namespace (only the namespace
    when ``symbols`` is False, as for a notebook's code)."""
    module = Module(name, is_package)
    statements: dict[str, list[ast.stmt]] = {}  # symbol -> the statements defining it

    def bind(bound: str, binding: Binding) -> None:
        module.bindings.append((bound, binding))

    def define(symbol: str, node: ast.stmt, bind_name: bool = True) -> None:
        statements.setdefault(symbol, []).append(node)
        if bind_name:
            bind(symbol, Binding("symbol", name, symbol))

    def bind_import(node: ast.stmt) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top != package:
                    bind(alias.asname or top, Binding("external", alias.name))
                    continue
                module.imports.add(alias.name)
                bind(alias.asname or package,
                     Binding("module", alias.name if alias.asname else package))
            return
        source_module = absolute_module(name, node.level, node.module or "", is_package)
        if source_module.split(".")[0] != package:
            for alias in node.names:
                if alias.name != "*":
                    bind(alias.asname or alias.name, Binding("external", source_module))
            return
        module.imports.add(source_module)
        for alias in node.names:
            if alias.name == "*":
                bind("*", Binding("star", source_module))
            else:
                bind(alias.asname or alias.name, Binding("import", source_module, alias.name))

    body = list(ast.parse(source).body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the module docstring
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bind_import(node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            target = add_to_class_target(node, qualifiers=None)[1]
            if target is None:
                define(node.name, node)
            else:  # a method attached at run time: part of its class
                define(f"{target}.{node.name}", node, bind_name=False)
                module.attached.setdefault(target, set()).add(f"{target}.{node.name}")
        elif _is_self_alias(node):  # d2l = sys.modules[__name__]
            bind(node.targets[0].id, Binding("module", name))
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) \
                and _stored_names(node):
            for target in sorted(_stored_names(node)):
                define(target, node)
            if "__all__" in _stored_names(node):
                module.exported = _literal_names(node) or module.exported
        else:
            define(PREAMBLE, node, bind_name=False)
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    bind_import(sub)
                elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    bind(sub.name, Binding("symbol", name, PREAMBLE))
                elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    bind(sub.id, Binding("symbol", name, PREAMBLE))
    if not symbols:
        return module
    lines = source.split("\n")
    for symbol, nodes in statements.items():
        module.digests[symbol] = normalised_digest(ast.Module(nodes, []))
        module.refs[symbol] = references(statement_text(lines, n) for n in nodes)
    return module


def _is_self_alias(node: ast.stmt) -> bool:
    return (isinstance(node, ast.Assign) and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Subscript)
            and attribute_chain(node.value.value) == ("sys", "modules")
            and isinstance(node.value.slice, ast.Name) and node.value.slice.id == "__name__")


def _literal_names(node: ast.stmt) -> tuple[str, ...] | None:
    try:
        value = ast.literal_eval(node.value)
    except (ValueError, TypeError, SyntaxError):
        return None
    return tuple(value) if isinstance(value, (list, tuple)) else None


def module_name(root: Path, path: Path, package: str) -> tuple[str, bool]:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def read_library(root: Path, package: str = "dlbook") -> Library:
    """Parse every ``*.py`` file under the package folder ``root`` (may not exist); a
    module whose file has not changed since it was last parsed is not parsed again (the
    memo lives in the book's build folder, ``root``'s parent)."""
    modules: dict[str, Module] = {}
    if root.is_dir():
        memo = FileMemo(root.parent, "library-graph", package)
        for path in sorted(root.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            name, is_package = module_name(root, path, package)
            modules[name] = memo.value(
                path, lambda p, n=name, i=is_package: parse_module(
                    n, p.read_text(encoding="utf-8"), package, i),
                extra=(name, is_package))
        memo.save()
    modules.setdefault(package, Module(package))
    return Library(package, modules)
