"""Rewrite the source text of one saved definition, keeping everything else as written.

The generated library should read like hand-written code, so a saved block is never
re-printed from its syntax tree (that would lose comments and layout). Instead the
changes are small text edits at positions that ``ast`` and ``tokenize`` report: drop the
``#@save`` marks, turn ``dlbook.NAME`` into ``NAME``, add the "Defined in" note to the
docstring, add function-local imports, and replace or add methods of a class.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass

from tools.library.names import FUNCTIONS, first_line, library_attributes_of, parsed

MARK = "#@save"
REPLACE = "replace"  # ``#@save replace``: this definition replaces another chapter's
_MARK_AT_END = re.compile(rf"{MARK}(?:\s+{REPLACE})?\s*$")


def mark_start(comment: str) -> int | None:
    """Where a comment's closing mark (``#@save`` or ``#@save replace``) starts, or None
    when the comment does not end with one."""
    found = _MARK_AT_END.search(comment)
    return found.start() if found else None


def strip_mark(line: str) -> str:
    """``line`` without its closing mark (as it reads in the generated library)."""
    start = mark_start(line)
    return line if start is None else line[:start].rstrip()


def is_replace(comment: str) -> bool:
    """Whether a comment's closing mark is ``#@save replace``."""
    start = mark_start(comment)
    return start is not None and REPLACE in comment[start:]


@dataclass(frozen=True)
class Edit:
    """Replace the text from ``start`` to ``end`` ((line, column), 1-based line, 0-based
    column in characters) by ``text``."""

    start: tuple[int, int]
    end: tuple[int, int]
    text: str


def char_col(line: str, byte_col: int) -> int:
    """``ast`` columns count UTF-8 bytes; edits count characters."""
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", "replace"))


def apply_edits(text: str, edits: list[Edit]) -> str:
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)

    def offset(point: tuple[int, int]) -> int:
        row, col = point
        return min(starts[row - 1] + col, len(text)) if row <= len(lines) else len(text)

    for edit in sorted(edits, key=lambda e: (offset(e.start), offset(e.end)), reverse=True):
        text = text[:offset(edit.start)] + edit.text + text[offset(edit.end):]
    return text


def remove_lines(first: int, last: int) -> Edit:
    return Edit((first, 0), (last + 1, 0), "")


def header_end(node: ast.stmt) -> int:
    """The last line of a statement's header (a def or class), or of the statement."""
    if isinstance(node, (*FUNCTIONS, ast.ClassDef)):
        return max(node.lineno, first_line(node.body[0]) - 1)
    return node.end_lineno or node.lineno


def _comments(lines: list[str], first: int, last: int) -> list[tokenize.TokenInfo]:
    """The comment tokens of lines ``first`` to ``last`` (a statement or its header)."""
    snippet = "\n".join(lines[first - 1:last]) + "\n"
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(snippet).readline))
    except (tokenize.TokenError, SyntaxError):
        return []
    return [t._replace(start=(t.start[0] + first - 1, t.start[1]),
                       end=(t.end[0] + first - 1, t.end[1]))
            for t in tokens if t.type == tokenize.COMMENT]


def marked_comments(lines: list[str], body: list[ast.stmt]) -> list[tuple[int, int, bool]]:
    """(row, column, alone on its line) of each comment that ends with a mark (``#@save``
    or ``#@save replace``), in
    code whose top-level statements are ``body``. Only the statement holding a candidate
    line is tokenized, and only its header when the line is in the header."""
    found = []
    for row, line in enumerate(lines, 1):
        if MARK not in line:
            continue
        holder = next((n for n in body
                       if first_line(n) <= row <= (n.end_lineno or n.lineno)), None)
        if holder is None:  # between statements there are only comments and blank lines
            col = line.index("#")
            if mark_start(line) is not None:
                found.append((row, col, True))
            continue
        end = header_end(holder)
        end = end if row <= end else holder.end_lineno
        comments = _comments(lines, first_line(holder), end)
        if not comments and end != holder.end_lineno:
            comments = _comments(lines, first_line(holder), holder.end_lineno)
        for token in comments:
            if token.start[0] == row and mark_start(token.string) is not None:
                col = token.start[1]
                found.append((row, col, not line[:col].strip()))
    return found


def mark_edits(text: str, tree: ast.Module) -> list[Edit]:
    """Edits that delete the ``#@save`` comments (and lines holding nothing else)."""
    edits = []
    lines = text.split("\n")
    for row, _, alone in marked_comments(lines, tree.body):
        kept = strip_mark(lines[row - 1])
        if alone and not kept.strip():
            edits.append(remove_lines(row, row))
        else:  # code, or another comment before the mark, stays
            edits.append(Edit((row, len(kept)), (row, len(lines[row - 1])), ""))
    return edits


def string_rows(text: str) -> tuple[set[int], dict[int, int], set[int]]:
    """One ``tokenize`` pass over ``text``: the rows inside multi-line strings (after the
    row each string starts on); for each row, the first row of its statement; and the
    rows inside multi-line docstrings (strings that open a block)."""
    rows: set[int] = set()
    docstrings: set[int] = set()
    statement: dict[int, int] = {}
    opened, start, previous = 0, None, None
    skip = (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT)
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        kind = tokenize.tok_name[token.type]
        if kind in ("STRING", "FSTRING_START"):
            opened = token.start[0]
        if kind in ("STRING", "FSTRING_END") and token.end[0] > opened:
            inside = range(opened + 1, token.end[0] + 1)
            rows.update(inside)
            if kind == "STRING" and previous == tokenize.INDENT:
                docstrings.update(inside)
        if token.type not in (tokenize.NL, tokenize.COMMENT):
            previous = token.type
        if token.type in skip:
            continue
        start = token.start[0] if start is None else start
        for row in range(token.start[0], token.end[0] + 1):
            statement.setdefault(row, start)
        if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            start = None
    return rows, statement, docstrings


def qualified_edits(text: str, lines: list[str]) -> list[Edit]:
    """Edits that turn every one-line ``dlbook.NAME`` into ``NAME``, and move continuation
    lines aligned after it left by as much, so that they stay aligned."""
    edits, shrinks = [], []
    for node in library_attributes_of(text):
        if node.lineno == node.end_lineno:
            line = lines[node.lineno - 1]
            start = char_col(line, node.col_offset)
            end = char_col(line, node.end_col_offset)
            edits.append(Edit((node.lineno, start), (node.lineno, end), node.attr))
            shrinks.append((node.lineno, end, end - start - len(node.attr)))
    if not shrinks:
        return edits
    inside_strings, statement, _ = string_rows("\n".join(lines))
    for row in range(1, len(lines) + 1):
        line = lines[row - 1]
        indent = len(line) - len(line.lstrip(" "))
        if row in inside_strings or not line.strip() or row not in statement:
            continue
        shift = sum(k for r, end, k in shrinks
                    if statement.get(r) == statement[row] and r < row and end < indent)
        if 0 < shift <= indent:
            edits.append(Edit((row, 0), (row, shift), ""))
    return edits


def _triple(literal: str, lines: list[str]) -> str:
    body = "\n".join(lines)
    return '"""' + literal.replace("\\", "\\\\").replace('"""', '\\"\\"\\"') + body + '"""'


def body_edits(node, lines: list[str], note: list[str], extra: list[str]) -> list[Edit]:
    """Add ``note`` lines to the docstring of ``node`` (a def or class) and ``extra``
    lines (already indented) right after it."""
    if not note and not extra:
        return []
    body0 = node.body[0]
    row = first_line(body0)
    line = lines[row - 1]
    col = char_col(line, body0.col_offset)
    on_header = bool(line[:col].strip())
    indent = " " * (node.col_offset + 4) if on_header else line[:col]
    after = "".join("\n" + e for e in extra)
    doc = body0.value if isinstance(body0, ast.Expr) else None
    if isinstance(doc, ast.Constant) and isinstance(doc.value, str):
        end_row = body0.end_lineno
        end_line = lines[end_row - 1]
        end = char_col(end_line, body0.end_col_offset)
        edits = [Edit((end_row, end), (end_row, end), after)] if after else []
        if not note:
            return edits
        noted = [indent + n for n in note]
        triple = end_line[max(0, end - 3):end] in ('"""', "'''")
        if triple and end_row > body0.lineno and not end_line[:end - 3].strip():
            edits.append(Edit((end_row, 0), (end_row, 0), "\n" + "".join(
                n + "\n" for n in noted)))
        elif triple:
            edits.append(Edit((end_row, end - 3), (end_row, end - 3),
                              "\n\n" + "\n".join(noted) + "\n" + indent))
        else:
            edits.append(Edit((row, col), (end_row, end),
                              _triple(doc.value, ["", "", *noted, indent])))
        return edits
    new = ([f'"""{note[0]}"""'] if len(note) == 1 else
           [f'"""{note[0]}', *note[1:], '"""']) if note else []
    inserted = "\n".join(indent + n for n in new) + after
    if on_header:
        cut = len(line[:col].rstrip())
        return [Edit((row, cut), (row, col), "\n" + inserted.lstrip("\n") + "\n" + indent)]
    return [Edit((row, 0), (row, 0), inserted.lstrip("\n") + "\n")]


def indent_block(text: str, prefix: str) -> str:
    """Indent ``text`` by ``prefix``, leaving the inside of multi-line strings (other
    than docstrings) unchanged and blank lines empty."""
    strings, _, docstrings = string_rows(text)
    keep = strings - docstrings
    return "\n".join(line if number in keep or not line.strip() else prefix + line
                     for number, line in enumerate(text.split("\n"), 1))


@dataclass(frozen=True)
class Rewrite:
    """What to change in one definition besides its marks and ``dlbook.NAME`` uses."""

    note: tuple[str, ...] = ()  # lines added to its docstring
    lazy: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (function, import lines) pairs
    drop: tuple[tuple[int, int], ...] = ()  # (first, last) line ranges to delete
    methods: tuple[tuple[str, str], ...] = ()  # (name, text) methods of a class, in order


def _replace_methods(node: ast.ClassDef, lines, methods: dict[str, str]) -> tuple[list, list]:
    """Edits replacing methods of the class body that ``methods`` redefines."""
    edits, ranges, done = [], [], set()
    for item in node.body:
        if isinstance(item, FUNCTIONS) and item.name in methods:
            first, last = first_line(item), item.end_lineno
            ranges.append((first, last))
            if item.name in done:
                edits.append(remove_lines(first, last))
            else:
                edits.append(Edit((first, 0), (last, len(lines[last - 1])),
                                  methods[item.name]))
                done.add(item.name)
    new = [text for name, text in methods.items() if name not in done]
    if new:
        last = node.end_lineno
        edits.append(Edit((last, len(lines[last - 1])), (last, len(lines[last - 1])),
                          "".join("\n\n" + text for text in new)))
    return edits, ranges


def rewrite(text: str, change: Rewrite) -> str:
    """The definition ``text`` with ``change`` applied, marks dropped, names unqualified."""
    tree = parsed(text)
    lines = text.split("\n")
    node = tree.body[0]
    lazy = dict(change.lazy)
    edits = mark_edits(text, tree) + qualified_edits(text, lines)
    edits += [remove_lines(first, last) for first, last in change.drop]
    replaced: list[tuple[int, int]] = []
    if isinstance(node, FUNCTIONS):
        edits += body_edits(node, lines, list(change.note), list(lazy.get(node.name, ())))
    elif isinstance(node, ast.ClassDef):
        edits += body_edits(node, lines, list(change.note), [])
        method_edits, replaced = _replace_methods(node, lines, dict(change.methods))
        for item in node.body:
            if isinstance(item, FUNCTIONS) and item.name in lazy and not any(
                    a <= item.lineno <= b for a, b in replaced):
                edits += body_edits(item, lines, [], list(lazy[item.name]))
        edits = [e for e in edits if not any(a <= e.start[0] <= b for a, b in replaced)]
        edits += method_edits
    return apply_edits(text, edits)
