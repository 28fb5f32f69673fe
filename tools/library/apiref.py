"""Write the book's API reference page, ``book/api.md``, from the resolved library.

Plain MyST Markdown: one part per generated module in book order, one bullet per public
name with its signature, the first line of its docstring and a link to the section that
defines it; a class lists its public methods (``__init__`` included) the same way.
"""

from __future__ import annotations

import ast
import copy
import textwrap

from tools.library.codegen import chapter_title
from tools.library.header import MARKDOWN_GENERATED
from tools.library.model import FRONT_MODULE, Entry, Library, Module
from tools.library.names import FUNCTIONS, LIBRARY, parsed
from tools.library.saved import Saved, Section

PAGE_LABEL = "sec-api"
TITLE = f"The {LIBRARY} Library"
SHORT_VALUE = 60


class _Unqualify(ast.NodeTransformer):
    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if isinstance(node.value, ast.Name) and node.value.id == LIBRARY:
            return ast.Name(node.attr, node.ctx)
        return self.generic_visit(node)


def _code(node: ast.AST) -> str:
    """Source of a (small) node, ``dlbook.NAME`` shown as ``NAME``; ``node`` is kept."""
    return ast.unparse(_Unqualify().visit(copy.deepcopy(node)))


def _link(section: Section) -> str:
    if section.label:
        return f"{{ref}}`{section.label}`"
    return f"{{doc}}`/{section.rel.rsplit('.', 1)[0]}`"


def _summary(node: ast.AST) -> str:
    doc = ast.get_docstring(node) if isinstance(node, (*FUNCTIONS, ast.ClassDef)) else None
    return doc.strip().split("\n")[0].strip() if doc else ""


def _signature(node, method: bool) -> str:
    args = node.args
    if method and not any(isinstance(d, ast.Name) and d.id == "staticmethod"
                          for d in node.decorator_list):
        positional = [*args.posonlyargs, *args.args]
        if positional:
            args = ast.arguments(**{**vars(args)})
            if args.posonlyargs:
                args.posonlyargs = args.posonlyargs[1:]
            else:
                args.args = args.args[1:]
    return f"{node.name}({_code(args)})"


def _bullet(code: str, summary: str, section: Section, indent: str = "") -> str:
    text = f"{indent}- `{code}`"
    if summary:
        text += f": {summary}"
    return text + f" ({_link(section)})"


def _node(saved: Saved) -> ast.stmt:
    return parsed(saved.text).body[0]


def _methods(entry: Entry) -> list[tuple[ast.AST, Section]]:
    node = _node(entry.saved)
    found: dict[str, tuple[ast.AST, Section]] = {}
    for item in node.body:
        if isinstance(item, FUNCTIONS):
            found.setdefault(item.name, (item, entry.saved.section))
    for name, saved in entry.methods.items():
        found[name] = (_node(saved), saved.section)
    return [(item, section) for name, (item, section) in found.items()
            if not name.startswith("_") or name == "__init__"]


def entry_lines(entry: Entry) -> list[str]:
    """The bullets of one public name (and of its methods, for a class)."""
    saved = entry.saved
    node = _node(saved)
    section = saved.section
    if isinstance(node, ast.ClassDef):
        bases = [_code(b) for b in node.bases] + [_code(k) for k in node.keywords]
        code = f"class {node.name}" + (f"({', '.join(bases)})" if bases else "")
        lines = [_bullet(code, _summary(node), section)]
        lines += [_bullet(_signature(m, True), _summary(m), s, "  ")
                  for m, s in _methods(entry)]
        return lines
    if isinstance(node, FUNCTIONS):
        return [_bullet(_signature(node, False), _summary(node), section)]
    value = _code(node.value) if node.value is not None else ""
    code = f"{entry.name} = {value}" if value and len(value) <= SHORT_VALUE else entry.name
    return [_bullet(code, "", section)]


def _module_heading(module: Module, titles: dict[str, str]) -> str:
    title = chapter_title(module, titles)
    number = module.name[2:4]
    if module.name == FRONT_MODULE:
        return "## Front Matter"
    return f"## Chapter {int(number)}: {title}" if number.isdigit() else f"## {title}"


def render_api(library: Library, titles: dict[str, str]) -> str:
    """The text of ``book/api.md``."""
    lines = [MARKDOWN_GENERATED,
             "% Do not edit this page: edit the sections it links to, then run `make lib`.",
             "", f"({PAGE_LABEL})=", f"# {TITLE}", "",
             *textwrap.wrap(
                 f"Every public name of the `{LIBRARY}` library, in the order in which the "
                 "book defines it, with its signature, a one-line summary and a link to the "
                 f"section that explains it. After `import {LIBRARY}`, use a name as "
                 f"`{LIBRARY}.NAME`.", 88),
             ""]
    modules = [m for m in library.modules if any(e.public for e in m.entries)]
    if not modules:
        lines += ["The library has no names yet.", ""]
    for module in modules:
        lines += [_module_heading(module, titles), "",
                  f"Module `{LIBRARY}.{module.name}`.", ""]
        for entry in module.entries:
            if entry.public:
                lines += entry_lines(entry)
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
