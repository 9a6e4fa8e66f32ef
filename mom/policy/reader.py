"""Reading policy text: characters -> tokens -> a tree of nodes.

This is the only place that looks at characters.  The tree it returns keeps
every node's line and column so that later errors can point at the text.
Reading never evaluates anything, and the compiler never reads text, so a
policy is read exactly once however often it runs.
"""
from __future__ import annotations

import re
from typing import Any

from mom.policy.errors import PolicyError

#: How deeply brackets may nest.  Real policies stay below 20; the limit
#: keeps a pathological text from exhausting Python's stack later on.
MAX_DEPTH = 100

_DELIMITED = r"(?=[\s()\[\]{}\"'#]|\Z)"
_TOKEN = re.compile(r"""
    (?:\s+|\#[^\n]*)*                                  # skipped: blanks, comments
    (?:
        (?P<open>[(\[{])
      | (?P<close>[)\]}])
      | (?P<symbol>[A-Za-z_][A-Za-z0-9_.\-]*)""" + _DELIMITED + r"""
      | (?P<float>[+-]?(?:[0-9]+\.[0-9]*(?:[eE][+-]?[0-9]+)?
                        |\.[0-9]+(?:[eE][+-]?[0-9]+)?
                        |[0-9]+[eE][+-]?[0-9]+))""" + _DELIMITED + r"""
      | (?P<int>[+-]?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|[1-9][0-9]*|0+))""" + _DELIMITED + r"""
      | (?P<operator><=|>=|==|!=|<<|>>|[-+*/<>])""" + _DELIMITED + r"""
      | (?P<string>"[^"]*"|'[^']*')
      | (?P<quote>["'])
      | (?P<bad>[^\s()\[\]{}"'\#]+)
      | (?P<end>\Z)
    )""", re.VERBOSE)
_LEADING_ZERO = re.compile(r"[+-]?0[0-9]+\Z")

#: The operator symbols; they are names like any other, spelled differently.
OPERATORS = frozenset("+ - * / < > <= >= == != << >>".split())

_CLOSER = {"(": ")", "[": "]", "{": "}"}


class Node:
    """Where a piece of the program starts in the text."""
    __slots__ = ("line", "col")

    line: int
    col: int

    def source(self, limit: int = 40) -> str:
        """The node written back as policy text, shortened for messages.

        Only as much of the tree is visited as is shown, so the cost does
        not grow with the size of the node.
        """
        parts: list[str] = []
        self._write(parts, limit + 1)
        text = "".join(parts)
        return text if len(text) <= limit else text[:limit] + "..."

    def _write(self, parts: list[str], room: int) -> int:
        """Append this node's text to ``parts`` until ``room`` is used; room left."""
        text = self._text()
        parts.append(text)
        return room - len(text)

    def _text(self) -> str:
        raise NotImplementedError


class Literal(Node):
    """A number, a string or nil."""
    __slots__ = ("value",)

    def __init__(self, value: Any, line: int, col: int) -> None:
        self.value, self.line, self.col = value, line, col

    def _text(self) -> str:
        if self.value is None:
            return "nil"
        return f'"{self.value}"' if isinstance(self.value, str) else repr(self.value)

    def __repr__(self) -> str:
        return f"Literal({self.value!r})"


class Symbol(Node):
    """A name; ``parts`` splits a dotted name (``guest.io_tune``)."""
    __slots__ = ("name", "parts")

    def __init__(self, name: str, line: int, col: int) -> None:
        self.name, self.line, self.col = name, line, col
        self.parts = tuple(name.split("."))

    @property
    def dotted(self) -> bool:
        return len(self.parts) > 1

    def _text(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Symbol({self.name})"


class Form(Node):
    """A bracketed group: ``( )`` and ``[ ]`` are calls, ``{ }`` a block."""
    __slots__ = ("items", "bracket", "defvar")

    def __init__(self, items: tuple[Node, ...], bracket: str, line: int, col: int) -> None:
        self.items, self.bracket, self.line, self.col = items, bracket, line, col
        self.defvar: bool | None = None     # holds a defvar? (the compiler's cache)

    @property
    def is_block(self) -> bool:
        return self.bracket == "{"

    def _text(self) -> str:
        inner = " ".join(item._text() for item in self.items)
        return "{" + inner + "}" if self.is_block else "(" + inner + ")"

    def _write(self, parts: list[str], room: int) -> int:
        parts.append("{" if self.is_block else "(")
        room -= 1
        for i, item in enumerate(self.items):
            if room <= 0:
                return room
            if i:
                parts.append(" ")
                room -= 1
            room = item._write(parts, room)
        parts.append("}" if self.is_block else ")")
        return room - 1

    def __repr__(self) -> str:
        return f"Form({self.bracket!r}, {list(self.items)!r})"


def _bad_token(text: str, line: int, col: int) -> PolicyError:
    if _LEADING_ZERO.match(text):
        return PolicyError(f"'{text}' is not a number", line, col,
                           hint="a decimal integer cannot start with 0; use 0o for octal")
    shown = text if len(text) <= 30 else text[:30] + "..."
    return PolicyError(f"unexpected '{shown}'", line, col)


def read(text: str) -> list[Node]:
    """Parse a whole policy text into its top-level nodes.

    Raises PolicyError for anything that is not well-formed: an unknown
    token, an unclosed string or bracket, a closing bracket that does not
    match, nesting deeper than MAX_DEPTH.
    """
    if not isinstance(text, str):
        raise PolicyError(f"policy text must be a string, not {type(text).__name__}")
    top: list[Node] = []
    items = top
    open_stack: list[tuple[str, int, int, list[Node]]] = []
    line, line_start, counted = 1, 0, 0       # line number of offset `counted`
    count, rfind = text.count, text.rfind
    position = 0
    for match in _TOKEN.finditer(text):
        if match.start() != position:  # cannot happen: every character matches something
            raise PolicyError("unreadable text", line)
        position = match.end()
        kind = match.lastgroup
        if kind == "end":
            break
        start = match.start(kind)
        if start > counted:
            newlines = count("\n", counted, start)
            if newlines:
                line += newlines
                line_start = rfind("\n", counted, start) + 1
            counted = start
        col = start - line_start + 1
        token = match.group(kind)
        if kind == "symbol":
            if token == "nil":
                items.append(Literal(None, line, col))
            elif "." in token and "" in token.split("."):
                raise PolicyError(f"malformed name '{token}'", line, col,
                                  hint="a dot must separate two names")
            else:
                items.append(Symbol(token, line, col))
        elif kind == "open":
            if len(open_stack) >= MAX_DEPTH:
                raise PolicyError(f"brackets nested more than {MAX_DEPTH} deep", line, col)
            open_stack.append((token, line, col, items))
            items = []
        elif kind == "close":
            if not open_stack:
                raise PolicyError(f"unexpected '{token}'", line, col,
                                  hint="nothing is open here")
            opener, oline, ocol, parent = open_stack.pop()
            if _CLOSER[opener] != token:
                raise PolicyError(
                    f"expected '{_CLOSER[opener]}' to close the '{opener}' opened at "
                    f"line {oline} col {ocol}, got '{token}'", line, col)
            parent.append(Form(tuple(items), "{" if opener == "{" else "(", oline, ocol))
            items = parent
        elif kind == "int":
            try:
                items.append(Literal(int(token, 0), line, col))
            except ValueError:  # more digits than Python converts
                raise PolicyError(f"number {token[:20]}... is too long", line, col) from None
        elif kind == "float":
            items.append(Literal(float(token), line, col))
        elif kind == "operator":
            items.append(Symbol(token, line, col))
        elif kind == "string":
            items.append(Literal(token[1:-1], line, col))
        elif kind == "quote":
            raise PolicyError(f"unclosed string {token}...{token} opened", line, col)
        else:
            raise _bad_token(token, line, col)
    if open_stack:
        opener, oline, ocol, _ = open_stack[-1]
        raise PolicyError(f"unclosed '{opener}' opened", oline, ocol,
                          hint=f"the text ends before its '{_CLOSER[opener]}'")
    return top
