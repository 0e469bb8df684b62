"""A small GraphQL parser and executor for the emulators of GraphQL APIs.

It parses what API clients send — operations with variables, aliases, arguments, directives,
inline fragments, lists and input objects — and executes it against plain Python objects: a
resolver is a ``dict`` whose values are data or callables taking the field's arguments; a
:class:`Connection` is a Relay connection (``nodes``, ``edges { cursor node }``, ``pageInfo``).
It is not a validator of a schema: a field the emulator does not provide is an error naming
the field and type, which is what a real server answers for a misspelt field too.

Cost accounting follows Shopify's published model, which other APIs can ignore: scalars cost 0,
an object 1, a connection ``2 + first × (cost of one node)``, a mutation field 10 (its selection
is not charged). :func:`requested_cost` computes it statically from the query;
:class:`Executor` counts the *actual* cost of what it returned.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

#: What a mutation field costs, whatever it selects.
MUTATION_COST = 10


class GraphQLError(Exception):
    """An error reported in the response's top-level ``errors`` (HTTP 200)."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        line: int | None = None,
        column: int | None = None,
        path: Sequence[str | int] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.line = line
        self.column = column
        self.path = list(path) if path else None

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message}
        if self.line is not None:
            error["locations"] = [{"line": self.line, "column": self.column or 1}]
        if self.path:
            error["path"] = self.path
        if self.code:
            error["extensions"] = {"code": self.code}
        return error


# ---------------------------------------------------------------- syntax tree


@dataclass
class Variable:
    name: str


@dataclass
class EnumValue:
    name: str


@dataclass
class Directive:
    name: str
    arguments: dict[str, Any]


@dataclass
class FieldNode:
    name: str
    alias: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    directives: list[Directive] = field(default_factory=list)
    selections: list[FieldNode | InlineFragment] = field(default_factory=list)
    line: int = 0
    column: int = 0

    @property
    def key(self) -> str:
        return self.alias or self.name


@dataclass
class InlineFragment:
    type_condition: str | None
    selections: list[FieldNode | InlineFragment]


@dataclass
class Operation:
    kind: str  # query | mutation
    name: str | None
    variables: dict[str, Any]  # name -> default value (None when none)
    required: set[str]
    selections: list[FieldNode | InlineFragment]


# ---------------------------------------------------------------- lexer and parser

_TOKEN = re.compile(
    r"""
    (?P<ignored>[\s,\ufeff]+|\#[^\n]*)
  | (?P<spread>\.\.\.)
  | (?P<punct>[!$():=@\[\]{}|&])
  | (?P<block>\"\"\"(?:\\\"\"\"|[^"]|"(?!""))*\"\"\")
  | (?P<string>"(?:\\.|[^"\\\n])*")
  | (?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
  | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
    """,
    re.VERBOSE,
)
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


@dataclass
class _Token:
    kind: str
    text: str
    line: int
    column: int


def _tokens(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    line, line_start = 1, 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None:
            raise GraphQLError(
                f"Parse error on {source[position]!r}",
                line=line,
                column=position - line_start + 1,
            )
        kind = match.lastgroup or ""
        text = match.group()
        if kind != "ignored":
            tokens.append(_Token(kind, text, line, position - line_start + 1))
        newlines = text.count("\n")
        if newlines:
            line += newlines
            line_start = position + text.rindex("\n") + 1
        position = match.end()
    tokens.append(_Token("eof", "", line, position - line_start + 1))
    return tokens


def _unescape(text: str) -> str:
    out: list[str] = []
    chars = iter(text[1:-1])
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        escaped = next(chars, "")
        if escaped == "u":
            out.append(chr(int("".join(next(chars, "") for _ in range(4)), 16)))
        else:
            out.append(_ESCAPES.get(escaped, escaped))
    return "".join(out)


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = _tokens(source)
        self.index = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def error(self, expected: str) -> GraphQLError:
        token = self.token
        shown = token.text or "end of document"
        return GraphQLError(
            f'Parse error on "{shown}" ({token.kind.upper()}) at [{token.line}, {token.column}]'
            f" (expected {expected})",
            line=token.line,
            column=token.column,
        )

    def take(self, kind: str, text: str | None = None) -> _Token:
        token = self.token
        if token.kind != kind or (text is not None and token.text != text):
            raise self.error(text or kind)
        self.index += 1
        return token

    def peek(self, kind: str, text: str | None = None) -> bool:
        token = self.token
        return token.kind == kind and (text is None or token.text == text)

    def skip(self, kind: str, text: str | None = None) -> bool:
        if self.peek(kind, text):
            self.index += 1
            return True
        return False

    # -- document

    def document(self) -> list[Operation]:
        operations: list[Operation] = []
        while not self.peek("eof"):
            operations.append(self.operation())
        if not operations:
            raise self.error("an operation")
        return operations

    def operation(self) -> Operation:
        if self.peek("punct", "{"):
            return Operation("query", None, {}, set(), self.selection_set())
        kind = self.take("name").text
        if kind not in ("query", "mutation"):
            raise GraphQLError(f"Unsupported operation type {kind!r}")
        name = self.take("name").text if self.peek("name") else None
        variables: dict[str, Any] = {}
        required: set[str] = set()
        if self.skip("punct", "("):
            while not self.skip("punct", ")"):
                self.take("punct", "$")
                variable = self.take("name").text
                self.take("punct", ":")
                if self.type_reference():
                    required.add(variable)
                variables[variable] = self.value(const=True) if self.skip("punct", "=") else None
        self.directives()
        return Operation(kind, name, variables, required, self.selection_set())

    def type_reference(self) -> bool:
        """Parse a type; whether it is non-null."""
        if self.skip("punct", "["):
            self.type_reference()
            self.take("punct", "]")
        else:
            self.take("name")
        return self.skip("punct", "!")

    def selection_set(self) -> list[FieldNode | InlineFragment]:
        self.take("punct", "{")
        selections: list[FieldNode | InlineFragment] = []
        while not self.skip("punct", "}"):
            if self.skip("spread"):
                condition = None
                if self.skip("name", "on"):
                    condition = self.take("name").text
                elif self.peek("name"):
                    raise GraphQLError("Named fragments are not supported by this emulator")
                self.directives()
                selections.append(InlineFragment(condition, self.selection_set()))
                continue
            first = self.take("name")
            alias, name = None, first.text
            if self.skip("punct", ":"):
                alias, name = name, self.take("name").text
            arguments = self.arguments()
            directives = self.directives()
            children = self.selection_set() if self.peek("punct", "{") else []
            selections.append(
                FieldNode(name, alias, arguments, directives, children, first.line, first.column)
            )
        return selections

    def arguments(self) -> dict[str, Any]:
        arguments: dict[str, Any] = {}
        if self.skip("punct", "("):
            while not self.skip("punct", ")"):
                name = self.take("name").text
                self.take("punct", ":")
                arguments[name] = self.value()
        return arguments

    def directives(self) -> list[Directive]:
        directives: list[Directive] = []
        while self.skip("punct", "@"):
            directives.append(Directive(self.take("name").text, self.arguments()))
        return directives

    def value(self, const: bool = False) -> Any:
        token = self.token
        if token.kind == "punct" and token.text == "$" and not const:
            self.index += 1
            return Variable(self.take("name").text)
        if token.kind == "number":
            self.index += 1
            return float(token.text) if any(c in token.text for c in ".eE") else int(token.text)
        if token.kind == "string":
            self.index += 1
            return _unescape(token.text)
        if token.kind == "block":
            self.index += 1
            return token.text[3:-3].replace('\\"""', '"""')
        if token.kind == "name":
            self.index += 1
            return {"true": True, "false": False, "null": None}.get(
                token.text, EnumValue(token.text)
            )
        if self.skip("punct", "["):
            items = []
            while not self.skip("punct", "]"):
                items.append(self.value(const))
            return items
        if self.skip("punct", "{"):
            fields = {}
            while not self.skip("punct", "}"):
                name = self.take("name").text
                self.take("punct", ":")
                fields[name] = self.value(const)
            return fields
        raise self.error("a value")


def parse(source: str) -> list[Operation]:
    """The operations of a GraphQL document; :class:`GraphQLError` when it is not valid syntax.

    Documents are cached by their text (clients send the same few queries again and again, a
    page at a time): the trees are shared, so nothing may change them after parsing."""
    return list(_parse(source))


@lru_cache(maxsize=256)
def _parse(source: str) -> tuple[Operation, ...]:
    return tuple(_Parser(source).document())


def select_operation(operations: list[Operation], name: str | None) -> Operation:
    """The operation a request names (``operationName``), or its only operation."""
    if name:
        for operation in operations:
            if operation.name == name:
                return operation
        raise GraphQLError(f'No operation named "{name}"')
    if len(operations) > 1:
        raise GraphQLError("An operation name is required when the document has several")
    return operations[0]


def resolve_value(value: Any, variables: dict[str, Any]) -> Any:
    """An argument value with its variables substituted (enums become their names)."""
    if isinstance(value, Variable):
        if value.name not in variables:
            raise GraphQLError(f"Variable ${value.name} is used but not declared")
        return variables[value.name]
    if isinstance(value, EnumValue):
        return value.name
    if isinstance(value, list):
        return [resolve_value(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: resolve_value(v, variables) for k, v in value.items()}
    return value


def bind_variables(operation: Operation, given: dict[str, Any] | None) -> dict[str, Any]:
    """The variables of a request, checked against the operation's declarations."""
    given = dict(given or {})
    bound: dict[str, Any] = {}
    for name, default in operation.variables.items():
        if name in given:
            bound[name] = given.pop(name)
        elif name in operation.required and default is None:
            raise GraphQLError(f"Variable ${name} of required type was not provided.")
        else:
            bound[name] = default
    return bound


def arguments(node: FieldNode, variables: dict[str, Any]) -> dict[str, Any]:
    return {name: resolve_value(v, variables) for name, v in node.arguments.items()}


def fields(
    selections: Sequence[FieldNode | InlineFragment], typename: str | None = None
) -> Iterator[FieldNode]:
    """The fields of a selection set, inline fragments flattened (for ``typename`` if given)."""
    for selection in selections:
        if isinstance(selection, InlineFragment):
            if typename is None or selection.type_condition in (None, typename):
                yield from fields(selection.selections, typename)
        else:
            yield selection


# ---------------------------------------------------------------- cost


def requested_cost(operation: Operation, variables: dict[str, Any]) -> int:
    """The query's cost before it runs: connections are charged for ``first`` nodes."""
    if operation.kind == "mutation":
        return sum(MUTATION_COST for _ in fields(operation.selections))
    return sum(_field_cost(f, variables) for f in fields(operation.selections))


def _is_connection(node: FieldNode) -> bool:
    return "first" in node.arguments or "last" in node.arguments


def _field_cost(node: FieldNode, variables: dict[str, Any]) -> int:
    if not node.selections:
        return 0
    if "ids" in node.arguments:
        # `nodes(ids:)`: a list as long as its ids, each charged as its costliest type.
        ids = arguments(node, variables).get("ids") or []
        return len(ids) * (1 + _costliest_type(node, variables))
    if _is_connection(node):
        args = arguments(node, variables)
        size = int(args.get("first") or args.get("last") or 0)
        return 2 + size * _node_cost(node, variables)
    return 1 + sum(_field_cost(f, variables) for f in fields(node.selections))


def _costliest_type(node: FieldNode, variables: dict[str, Any]) -> int:
    """The cost of ``node``'s selection for the costliest of the types its fragments name."""
    types = {s.type_condition for s in node.selections if isinstance(s, InlineFragment)}
    return max(
        sum(_field_cost(f, variables) for f in fields(node.selections, typename))
        for typename in types or {None}
    )


def _node_cost(connection: FieldNode, variables: dict[str, Any]) -> int:
    """What one node of a connection costs (the largest of ``nodes`` and ``edges { node }``)."""
    costs = [0]
    for child in fields(connection.selections):
        if child.name == "nodes":
            costs.append(1 + sum(_field_cost(f, variables) for f in fields(child.selections)))
        elif child.name == "edges":
            for edge_field in fields(child.selections):
                if edge_field.name == "node":
                    costs.append(
                        1 + sum(_field_cost(f, variables) for f in fields(edge_field.selections))
                    )
    return max(costs)


# ---------------------------------------------------------------- execution


@dataclass
class Connection:
    """A page of a Relay connection: its nodes with their cursors."""

    items: list[tuple[str, Any]]  # (cursor, node)
    has_next_page: bool = False
    has_previous_page: bool = False

    def page_info(self) -> dict[str, Any]:
        return {
            "hasNextPage": self.has_next_page,
            "hasPreviousPage": self.has_previous_page,
            "startCursor": self.items[0][0] if self.items else None,
            "endCursor": self.items[-1][0] if self.items else None,
        }


Resolver = dict[str, Any]


class Executor:
    """Projects resolvers onto a selection set, counting the actual cost of what it returns."""

    def __init__(self, variables: dict[str, Any]) -> None:
        self.variables = variables
        self.actual_cost = 0
        self._flat: dict[tuple[int, str | None], list[FieldNode]] = {}
        #: (selection set, typename) -> [(response key, field name, field, has a selection,
        #: has arguments)]: what :meth:`_object` walks for each object.
        self._plans: dict[tuple[int, str | None], list[tuple[str, str, FieldNode, bool, bool]]] = {}
        #: A field's arguments with the request's variables substituted (the same on every node
        #: of a page, so resolved once per request).
        self._arguments: dict[int, dict[str, Any]] = {}

    def _fields(
        self, selections: Sequence[FieldNode | InlineFragment], typename: str | None
    ) -> list[FieldNode]:
        key = (id(selections), typename)
        flat = self._flat.get(key)
        if flat is None:
            flat = self._flat[key] = list(fields(selections, typename))
        return flat

    def _plan(
        self, selections: Sequence[FieldNode | InlineFragment], typename: str | None
    ) -> list[tuple[str, str, FieldNode, bool, bool]]:
        key = (id(selections), typename)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = [
                (f.key, f.name, f, bool(f.selections), bool(f.arguments))
                for f in self._fields(selections, typename)
            ]
        return plan

    def arguments(self, node: FieldNode) -> dict[str, Any]:
        """``node``'s arguments, variables substituted (a fresh dict the caller may keep)."""
        if not node.arguments:
            return {}
        resolved = self._arguments.get(id(node))
        if resolved is None:
            resolved = self._arguments[id(node)] = arguments(node, self.variables)
        return dict(resolved)

    def select(self, value: Any, node: FieldNode) -> Any:
        """The response value of ``node`` given its resolved ``value``."""
        if not node.selections:
            return value
        if value is None:
            return None
        if isinstance(value, Connection):
            return self._connection(value, node)
        if isinstance(value, list):
            # A list of objects is charged like one object (what the static cost assumed),
            # `nodes(ids:)` per object found.
            found = sum(v is not None for v in value)
            self.actual_cost += found if "ids" in node.arguments else 1
            return [None if v is None else self._object(v, node.selections) for v in value]
        self.actual_cost += 1
        return self._object(value, node.selections)

    def _connection(self, value: Connection, node: FieldNode) -> Any:
        self.actual_cost += 2
        out: dict[str, Any] = {}
        for child in self._fields(node.selections, None):
            key = child.key
            if child.name == "nodes":
                self.actual_cost += len(value.items)
                selections = child.selections
                make = self._object
                out[key] = [make(item, selections) for _, item in value.items]
            elif child.name == "edges":
                edges = []
                for cursor, item in value.items:
                    edge: dict[str, Any] = {}
                    for edge_field in self._fields(child.selections, None):
                        if edge_field.name == "cursor":
                            edge[edge_field.key] = cursor
                        elif edge_field.name == "node":
                            self.actual_cost += 1
                            edge[edge_field.key] = self._object(item, edge_field.selections)
                        else:
                            raise _unknown(edge_field, "Edge")
                    edges.append(edge)
                out[key] = edges
            elif child.name == "pageInfo":
                info = value.page_info()
                out[key] = {
                    f.key: info[f.name]
                    for f in self._fields(child.selections, None)
                    if f.name in info
                }
            else:
                raise _unknown(child, "Connection")
        return out

    def _object(
        self, resolver: Resolver, selections: Sequence[FieldNode | InlineFragment]
    ) -> dict[str, Any]:
        typename = resolver.get("__typename")
        plan = self._plans.get((id(selections), typename)) or self._plan(selections, typename)
        out: dict[str, Any] = {}
        for key, name, child, nested, has_arguments in plan:
            try:
                value = resolver[name]
            except KeyError:
                raise _unknown(child, typename or "object") from None
            if callable(value):
                value = value(self.arguments(child) if has_arguments else {})
            if nested and value is not None:
                if type(value) is dict:  # the common case of select(), inline
                    self.actual_cost += 1
                    value = self._object(value, child.selections)
                else:
                    value = self.select(value, child)
            out[key] = value
        return out


def _unknown(node: FieldNode, typename: str) -> GraphQLError:
    return GraphQLError(
        f"Field '{node.name}' doesn't exist on type '{typename}'",
        code="undefinedField",
        line=node.line,
        column=node.column,
    )


#: A root field's resolver: (arguments, the field node) -> value.
RootResolver = Callable[[dict[str, Any], FieldNode], Any]
