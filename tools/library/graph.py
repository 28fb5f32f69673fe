"""Read the library package into symbols: digests of their syntax and the names they use.

The generated library (``dlbook/*.py``) is read into top-level *symbols*: each function,
class (with all its methods, and any function attached to it by ``@add_to_class(C)``) and
assigned name, plus one ``<module>`` symbol per module for its other top-level statements.
Each symbol has a digest of its normalised syntax tree (docstrings, comments and layout
do not count, so a moved section or a reworded docstring re-runs nothing) and the names it
refers to: bases, decorators, names used in its body, resolved through the imports between
library modules (see :mod:`tools.library.deps`, which closes over them).
"""

from __future__ import annotations

import ast
import copy
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

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
    refs: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)
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


def _chain(node: ast.AST) -> tuple[str, ...] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return (node.id, *reversed(parts))
    return None


FROM, IMPORT = "<from>", "<import>"  # heads of chains that go through a local import


def _import_prefixes(node: ast.Import | ast.ImportFrom) -> dict[str, tuple[str, ...]]:
    """What each name a (function-level) import binds stands for, as a chain prefix."""
    if isinstance(node, ast.ImportFrom):
        return {a.asname or a.name: (FROM, str(node.level), node.module or "", a.name)
                for a in node.names if a.name != "*"}
    return {(a.asname or a.name.split(".")[0]): (IMPORT, a.name if a.asname
                                                  else a.name.split(".")[0])
            for a in node.names}


class _References(ast.NodeVisitor):
    """Collect the free-name chains (``a``, ``a.b.c``) used in a definition.

    A name imported inside a function (the generated library imports later modules
    lazily, inside the functions that use them) yields a chain that starts with
    ``<from> level module name`` or ``<import> module``, resolved by the caller.
    """

    def __init__(self) -> None:
        self.chains: set[tuple[str, ...]] = set()
        self.scopes: list[tuple[set[str], dict[str, tuple[str, ...]]]] = []

    @staticmethod
    def _bound_in(node) -> tuple[set[str], dict[str, tuple[str, ...]]]:
        """Names local to a function (parameters, names bound in its own body) and the
        names its own imports bind."""
        names = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
        imports: dict[str, tuple[str, ...]] = {}
        declared: set[str] = set()
        todo: list[ast.AST] = list(node.body)
        while todo:
            sub = todo.pop()
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
                names.add(sub.id)
            elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(sub.name)  # a nested scope: its own body is not ours
                continue
            elif isinstance(sub, ast.Lambda):
                continue
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                imports.update(_import_prefixes(sub))
            elif isinstance(sub, ast.ExceptHandler) and sub.name:
                names.add(sub.name)
            elif isinstance(sub, (ast.Global, ast.Nonlocal)):
                declared.update(sub.names)
            todo.extend(ast.iter_child_nodes(sub))
        return names - declared - set(imports), imports

    def _function(self, node) -> None:
        for expr in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults,
                     node.returns]:
            if expr is not None:
                self.visit(expr)
        for arg in ast.walk(node.args):
            if isinstance(arg, ast.arg) and arg.annotation is not None:
                self.visit(arg.annotation)
        self.scopes.append(self._bound_in(node))
        for stmt in node.body:
            self.visit(stmt)
        self.scopes.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.scopes.append(({a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)},
                            {}))
        self.visit(node.body)
        self.scopes.pop()

    def _add(self, chain: tuple[str, ...]) -> None:
        for names, imports in reversed(self.scopes):
            if chain[0] in imports:
                self.chains.add((*imports[chain[0]], *chain[1:]))
                return
            if chain[0] in names:
                return
        self.chains.add(chain)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain = _chain(node)
        if chain is None:
            self.generic_visit(node)
        else:
            self._add(chain)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._add((node.id,))


def references(node: ast.AST) -> set[tuple[str, ...]]:
    """Free names and attribute chains that ``node`` uses."""
    visitor = _References()
    visitor.visit(node)
    return visitor.chains


def absolute_module(module: str, level: int, target: str, is_package: bool) -> str:
    """The absolute name of ``from <level dots><target> import`` inside ``module``."""
    if not level:
        return target
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _attached_class(node: ast.AST) -> str | None:
    """``C`` for a function decorated with ``@add_to_class(C)`` / ``@lib.add_to_class(C)``."""
    for dec in getattr(node, "decorator_list", []):
        if isinstance(dec, ast.Call) and dec.args and isinstance(dec.args[0], ast.Name):
            chain = _chain(dec.func)
            if chain and chain[-1] == "add_to_class":
                return dec.args[0].id
    return None


def _stored_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)
            and isinstance(n.ctx, ast.Store)}


def parse_module(name: str, source: str, package: str, is_package: bool = False) -> Module:
    """Read one library module's symbols, references and namespace."""
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
            target = _attached_class(node)
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
    for symbol, nodes in statements.items():
        tree = ast.Module(nodes, [])
        module.digests[symbol] = normalised_digest(tree)
        module.refs[symbol] = references(tree)
    return module


def _is_self_alias(node: ast.stmt) -> bool:
    return (isinstance(node, ast.Assign) and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Subscript)
            and _chain(node.value.value) == ("sys", "modules")
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
    """Parse every ``*.py`` file under the package folder ``root`` (may not exist)."""
    modules: dict[str, Module] = {}
    if root.is_dir():
        for path in sorted(root.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            name, is_package = module_name(root, path, package)
            modules[name] = parse_module(name, path.read_text(encoding="utf-8"), package,
                                         is_package)
    modules.setdefault(package, Module(package))
    return Library(package, modules)
