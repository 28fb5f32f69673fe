"""Which library definitions a notebook uses, transitively (over :mod:`tools.library.graph`).

A notebook's *roots* are the library names its code cells use (``dlbook.X``,
``from dlbook import X``, ``import dlbook.mod as m; m.X``, names inside ``%time``); its
dependencies are the transitive closure of those roots through the names each library
symbol uses, the methods ``@add_to_class`` attaches to a class, and the module-level
statements that importing a module runs. A bare use of a library module
(``dir(dlbook)``) or an attribute that cannot be seen statically conservatively depends on
everything that module holds.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from tools.core.python import python_of_cell
from tools.library.graph import (
    PREAMBLE,
    Binding,
    Library,
    Module,
    SymbolId,
    absolute_module,
    parse_module,
    references,
)
from tools.library.names import FROM, IMPORT, parsed


@dataclass(frozen=True)
class Target:
    """What a used name resolves to: a library symbol, or a whole library module."""

    kind: str  # "symbol" or "module"
    module: str
    name: str = ""


class Resolver:
    """Resolve names through a library's namespaces and close over dependencies."""

    def __init__(self, library: Library) -> None:
        self.library = library
        self._namespaces: dict[str, dict[str, Binding]] = {}
        self._attached: dict[SymbolId, set[SymbolId]] | None = None

    def namespace(self, module: str | Module) -> dict[str, Binding]:
        """A module's names after its imports (star imports expanded, in order)."""
        key = module if isinstance(module, str) else id(module)
        if key in self._namespaces:
            return self._namespaces[key]
        found = self.library.modules.get(module) if isinstance(module, str) else module
        namespace: dict[str, Binding] = {}
        self._namespaces[key] = namespace  # an import cycle sees a partial namespace
        for bound, binding in (found.bindings if found else []):
            if binding.kind != "star":
                namespace[bound] = binding
                continue
            source = self.library.modules.get(binding.module)
            names = source.exported if source and source.exported is not None else [
                n for n in self.namespace(binding.module) if not n.startswith("_")]
            for name in names:
                namespace[name] = Binding("import", binding.module, name)
        return namespace

    def member(self, module: str, name: str, seen: frozenset = frozenset()) -> Target | None:
        """``module.name``: a symbol, a submodule, or None (not from the library)."""
        binding = self.namespace(module).get(name)
        if binding is not None and (module, name) not in seen:
            return self.follow(binding, seen | {(module, name)})
        if f"{module}.{name}" in self.library.modules:
            return Target("module", f"{module}.{name}")
        return None

    def follow(self, binding: Binding, seen: frozenset = frozenset()) -> Target | None:
        if binding.kind == "external":
            return Target("external", binding.module)
        if binding.kind == "symbol":
            return Target("symbol", binding.module, binding.name)
        if binding.kind == "module":
            return Target("module", binding.module)
        return self.member(binding.module, binding.name, seen)

    def resolve(self, module: str | Module, chain: tuple[str, ...]) -> Target | None:
        """Resolve a name chain (``a.b.c``) used in ``module``; None if not the library's.

        An attribute of a library module that cannot be seen statically resolves to the
        whole module (a conservative answer).
        """
        if chain[0] == FROM:  # a name imported inside a function
            found = self.library.modules.get(module) if isinstance(module, str) else module
            source = absolute_module(found.name if found else "", int(chain[1]), chain[2],
                                     bool(found and found.is_package))
            target, rest = self._module_member(source, chain[3]), chain[4:]
        elif chain[0] == IMPORT:
            target, rest = self._module_member(chain[1], None), chain[2:]
        else:
            binding = self.namespace(module).get(chain[0])
            target, rest = (self.follow(binding) if binding else None), chain[1:]
        for attr in rest:
            if target is None or target.kind != "module":
                break
            target = self.member(target.module, attr) or target
            if target.kind == "module" and not target.module.endswith(f".{attr}"):
                break
        return None if target is None or target.kind == "external" else target

    def _module_member(self, module: str, name: str | None) -> Target | None:
        if module.split(".")[0] != self.library.package:
            return None
        if name is None:
            return Target("module", module)
        return self.member(module, name)

    def attached(self, symbol: SymbolId) -> set[SymbolId]:
        """Functions attached to class ``symbol`` with ``@add_to_class``."""
        if self._attached is None:
            self._attached = {}
            for name, module in self.library.modules.items():
                for cls, methods in module.attached.items():
                    target = self.resolve(name, (cls,))
                    if target and target.kind == "symbol":
                        key = (target.module, target.name)
                        self._attached.setdefault(key, set()).update(
                            (name, m) for m in methods)
        return self._attached.get(symbol, set())

    def module_symbols(self, module: str) -> set[SymbolId]:
        """Everything a bare use of ``module`` may reach."""
        found: set[SymbolId] = set()
        for name in self.namespace(module):
            target = self.member(module, name)
            if target and target.kind == "symbol":
                found.add((target.module, target.name))
            elif target and target.module != module and target.module.startswith(module):
                found |= self.module_symbols(target.module)
        mod = self.library.modules.get(module)
        if mod and PREAMBLE in mod.digests:
            found.add((module, PREAMBLE))
        return found

    def import_preambles(self, module: str, seen: set[str] | None = None) -> set[SymbolId]:
        """Module-level statements that run when ``module`` is imported."""
        seen = set() if seen is None else seen
        found: set[SymbolId] = set()
        parts = module.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b imports a first
            name = ".".join(parts[:i])
            if name in seen or name not in self.library.modules:
                continue
            seen.add(name)
            mod = self.library.modules[name]
            if PREAMBLE in mod.digests:
                found.add((name, PREAMBLE))
            for imported in mod.imports:
                found |= self.import_preambles(imported, seen)
        return found

    def closure(self, roots: set[Target]) -> set[SymbolId]:
        """Every library symbol the ``roots`` need, transitively.

        A root of kind ``import`` (a bare ``import dlbook.mod``) needs only the statements
        that importing runs; a ``module`` root (a bare use of a module) needs everything.
        """
        todo: list[SymbolId] = []
        for root in roots:
            todo.extend(self.import_preambles(root.module))
            if root.kind == "module":
                todo.extend(self.module_symbols(root.module))
            elif root.kind == "symbol":
                todo.append((root.module, root.name))
        done: set[SymbolId] = set()
        while todo:
            symbol = todo.pop()
            module = self.library.modules.get(symbol[0])
            if symbol in done or module is None or symbol[1] not in module.digests:
                continue
            done.add(symbol)
            todo.extend(self.import_preambles(symbol[0]))
            todo.extend(self.attached(symbol))
            for chain in module.refs[symbol[1]]:
                target = self.resolve(symbol[0], chain)
                if target is not None:
                    todo.extend(self.closure_roots(target))
        return done

    def closure_roots(self, target: Target) -> list[SymbolId]:
        if target.kind == "module":
            return [*self.module_symbols(target.module), *self.import_preambles(target.module)]
        return [(target.module, target.name)]


def notebook_roots(cells: list[str], resolver: Resolver) -> set[Target]:
    """The library names the code ``cells`` of a notebook use."""
    package = resolver.library.package
    codes = [c for c in (python_of_cell(cell) for cell in cells) if c is not None]
    code = "\n".join(codes)
    module = parse_module("<notebook>", code, package, symbols=False)
    tree = parsed(code)
    roots = {target for chain in references(codes)
             if (target := resolver.resolve(module, chain)) is not None}
    for node in ast.walk(tree):  # an import alone runs the imported modules' preambles
        if isinstance(node, ast.Import):
            roots.update(Target("import", a.name) for a in node.names
                         if a.name.split(".")[0] == package)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == package:
            roots.add(Target("import", node.module))
    return roots


def notebook_dependencies(cells: list[str], library: Library) -> dict[str, str]:
    """``{"module:name": digest}`` of every library symbol the notebook's cells need."""
    resolver = Resolver(library)
    symbols = resolver.closure(notebook_roots(cells, resolver))
    return {f"{m}:{n}": library.digest((m, n)) for m, n in sorted(symbols)}
