"""The arithmetic of derived KPIs: + - * / ( ), numbers and other KPIs by key. Parsed, never eval'd.

A small recursive-descent parser turns the text into a tree, which renders to SQL over the other
KPIs' values (with NULLIF on every divisor: division by zero gives no value, not an error) and
lists the keys it references (for validation and the dependency order). A key is written in braces,
`{net-sales}`, or bare when it is a plain identifier (`revenue`, `net_sales`); bare words cannot hold
a hyphen, which would read as a minus.

    expression := term (("+" | "-") term)*
    term       := factor (("*" | "/") factor)*
    factor     := ("+" | "-") factor | number | key | "(" expression ")"
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

MAX_LENGTH = 2000
MAX_DEPTH = 50
_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?|\.\d+)|\{(?P<braced>[A-Za-z0-9_-]+)\}|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>[-+*/()]))"
)


class ExpressionError(ValueError):
    """The expression is not valid; the message says where."""


@dataclass(frozen=True)
class Number:
    value: Decimal


@dataclass(frozen=True)
class Ref:
    key: str


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node


Node = Number | Ref | Unary | Binary


def parse(text: str) -> Node:
    """The expression's tree, or ExpressionError naming the problem and its position."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("The expression is empty.")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"The expression is longer than {MAX_LENGTH} characters.")
    parser = _Parser(_tokens(text))
    node = parser.expression(0)
    if parser.peek() is not None:
        _, value, at = parser.peek()  # type: ignore[misc]
        raise ExpressionError(f"Unexpected '{value}' at character {at + 1}.")
    return node


def references(node: Node) -> list[str]:
    """The KPI keys the expression reads, in order of first appearance."""
    seen: dict[str, None] = {}

    def walk(n: Node) -> None:
        if isinstance(n, Ref):
            seen.setdefault(n.key, None)
        elif isinstance(n, Unary):
            walk(n.operand)
        elif isinstance(n, Binary):
            walk(n.left)
            walk(n.right)

    walk(node)
    return list(seen)


def to_sql(node: Node, column: Callable[[str], str], *, real_division: bool = False) -> tuple[str, list[Decimal]]:
    """SQL for the expression, with `column(key)` giving each reference's column; numbers are parameters.

    `real_division` casts the dividend to REAL (SQLite divides integers as integers)."""
    params: list[Decimal] = []

    def render(n: Node) -> str:
        if isinstance(n, Number):
            params.append(n.value)
            return "CAST(%s AS NUMERIC)"
        if isinstance(n, Ref):
            return column(n.key)
        if isinstance(n, Unary):
            return f"({n.op}{render(n.operand)})"
        left, right = render(n.left), render(n.right)
        if n.op == "/":
            dividend = f"CAST({left} AS REAL)" if real_division else left
            return f"({dividend} / NULLIF({right}, 0))"
        return f"({left} {n.op} {right})"

    return render(node), params


def evaluate(node: Node, values: dict[str, Decimal | None]) -> Decimal | None:
    """The expression over given values (None in, None out; division by zero gives None). For tests
    and previews; computation runs in SQL."""
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Ref):
        return values.get(node.key)
    if isinstance(node, Unary):
        operand = evaluate(node.operand, values)
        return None if operand is None else (-operand if node.op == "-" else operand)
    left, right = evaluate(node.left, values), evaluate(node.right, values)
    if left is None or right is None:
        return None
    if node.op == "+":
        return left + right
    if node.op == "-":
        return left - right
    if node.op == "*":
        return left * right
    return None if right == 0 else left / right


def _tokens(text: str) -> list[tuple[str, str, int]]:
    tokens, position = [], 0
    stripped_end = len(text.rstrip())
    while position < stripped_end:
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            at = position + (len(text[position:]) - len(text[position:].lstrip()))
            raise ExpressionError(
                f"Unexpected '{text[at]}' at character {at + 1}: use numbers, KPI keys ({{key}} or a plain name), "
                "+ - * / and parentheses."
            )
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "number":
            try:
                value_ok = Decimal(value)
            except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
                raise ExpressionError(f"'{value}' is not a number.") from None
            del value_ok
        tokens.append(("ref" if kind in ("braced", "name") else kind, value, match.start(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str, int]]) -> None:
        self.tokens, self.position = tokens, 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            raise ExpressionError("The expression ends too early.")
        self.position += 1
        return token

    def expression(self, depth: int) -> Node:
        node = self.term(depth)
        while (token := self.peek()) is not None and token[1] in ("+", "-") and token[0] == "op":
            self.take()
            node = Binary(token[1], node, self.term(depth))
        return node

    def term(self, depth: int) -> Node:
        node = self.factor(depth)
        while (token := self.peek()) is not None and token[1] in ("*", "/") and token[0] == "op":
            self.take()
            node = Binary(token[1], node, self.factor(depth))
        return node

    def factor(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise ExpressionError(f"The expression nests deeper than {MAX_DEPTH} levels.")
        kind, value, at = self.take()
        if kind == "number":
            return Number(Decimal(value))
        if kind == "ref":
            return Ref(value)
        if value in ("+", "-"):
            return Unary(value, self.factor(depth + 1))
        if value == "(":
            node = self.expression(depth + 1)
            closing = self.peek()
            if closing is None or closing[1] != ")":
                raise ExpressionError(f"The parenthesis at character {at + 1} is never closed.")
            self.take()
            return node
        raise ExpressionError(f"Unexpected '{value}' at character {at + 1}.")
