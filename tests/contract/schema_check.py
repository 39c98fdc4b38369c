"""Checks the project's GraphQL against the real Animl API's schema (a contract fixture).

The real schema lives outside the project, in the shared contracts folder; it is read here, in
tests, and never copied into the project. Three checks are offered:

* `document_problems` / `request_problems`: would the real service accept this document (and
  these variables)? Variables are coerced exactly as graphql-core's executor coerces them.
* `project_documents`: every GraphQL executable document written in the project's source.
* `schema_subset_problems`: is the stand-in API's schema a subset of the real one, so that
  anything the stand-in accepts the real service accepts too?
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLSyntaxError,
    GraphQLUnionType,
    OperationDefinitionNode,
    build_schema,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values
from graphql.pyutils import Undefined

REPO = Path(__file__).resolve().parents[2]
REAL_SCHEMA_PATH = REPO.parent / "shared" / "contracts" / "animl-api.graphql"

# Folders of the project's own Python source that may hold GraphQL documents.
SOURCE_FOLDERS = ("chalice_app", "functions", "animl_local", "benchmarks")

_BUILT_IN_SCALARS = frozenset({"String", "Int", "Float", "Boolean", "ID"})
_DOCUMENT_STARTS = ("query", "mutation", "{")
# An operation's opening: `query Name(`, `mutation {`, or a bare selection `{ field(`/`{ field {`.
_LOOKS_LIKE_GRAPHQL = re.compile(
    r"\s*(?:(?:query|mutation)\b\s*(?:[_A-Za-z]\w*)?\s*[({]|\{\s*[_A-Za-z]\w*\s*[({])")


def _date_input(value: Any) -> str:
    """The real service's Date scalar takes ISO strings; refuse anything else."""
    if not isinstance(value, str):
        raise TypeError(f"Date cannot represent a non-string value: {value!r}")
    return value


@functools.cache
def load_real_schema() -> GraphQLSchema:
    """The real Animl API's schema, with a Date scalar that only accepts strings.

    `build_schema` gives custom scalars (Date, JSONObject) a pass-through coercion. Date is
    tightened to require a string. graphql-core 3.3 coerces through `coerce_input_value`
    (which `parse_value` only seeds at construction time), so both are replaced; literal
    Dates go through the default `parse_literal`, which calls `coerce_input_value`.
    """
    schema = build_schema(REAL_SCHEMA_PATH.read_text(encoding="utf-8"))
    date = schema.type_map["Date"]
    assert isinstance(date, GraphQLScalarType)
    date.parse_value = _date_input  # type: ignore[method-assign]
    date.coerce_input_value = _date_input
    return schema


def document_problems(schema: GraphQLSchema, query: str) -> list[str]:
    """Syntax and validation errors of a document against the schema; [] when it is valid."""
    try:
        document = parse(query)
    except GraphQLSyntaxError as error:
        return [f"syntax: {error.message}"]
    return [error.message for error in validate(schema, document)]


@functools.lru_cache(maxsize=256)
def _checked_document(schema: GraphQLSchema, query: str
                      ) -> tuple[tuple[str, ...], OperationDefinitionNode | None]:
    """The document's problems, else its one operation: a test sends the same few documents
    hundreds of times, and parsing and validating each again is most of its check."""
    problems = document_problems(schema, query)
    if problems:
        return tuple(problems), None
    operations = [definition for definition in parse(query).definitions
                  if isinstance(definition, OperationDefinitionNode)]
    if len(operations) != 1:
        return (f"expected exactly one operation, found {len(operations)}",), None
    return (), operations[0]


def request_problems(schema: GraphQLSchema, query: str,
                     variables: dict[str, Any] | None) -> list[str]:
    """Why the service would refuse this request (document plus variables); [] if it wouldn't.

    The document is parsed and validated, then the variables are coerced for its operation as
    graphql-core's executor does before running it.
    """
    problems, operation = _checked_document(schema, query)
    if operation is None:
        return list(problems)
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
    if isinstance(coerced, list):
        return [f"variables: {error.message}" for error in coerced]
    return []


def _python_files() -> Iterator[Path]:
    for folder in SOURCE_FOLDERS:
        yield from sorted((REPO / folder).rglob("*.py"))


def _is_document(text: str) -> bool:
    if not text.strip().startswith(_DOCUMENT_STARTS):
        return False
    try:
        document = parse(text)
    except GraphQLSyntaxError:
        return False
    # graphql-core 3.3 parses an empty selection set, so "{}" (a JSON default in Python code)
    # would count; an operation selects at least one field.
    return any(isinstance(definition, OperationDefinitionNode)
               and definition.selection_set.selections
               for definition in document.definitions)


def project_documents() -> dict[str, str]:
    """Every GraphQL executable document in the project's Python source, by "path.py:line"."""
    documents: dict[str, str] = {}
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        # The literal pieces of an f-string are not documents of their own.
        pieces = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
                  for part in node.values}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in pieces and _is_document(node.value)):
                documents[f"{path.relative_to(REPO)}:{node.lineno}"] = node.value
    return documents


def project_formatted_documents() -> dict[str, str]:
    """F-strings in the project's source that look like GraphQL documents (they can't be checked).

    The value is the f-string's literal parts joined, with `{...}` for each interpolation.
    """
    found: dict[str, str] = {}
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.JoinedStr):
                continue
            text = "".join(part.value if isinstance(part, ast.Constant) else "{...}"
                           for part in node.values)
            if _LOOKS_LIKE_GRAPHQL.match(text):
                found[f"{path.relative_to(REPO)}:{node.lineno}"] = text
    return found


# ---- the stand-in's schema is a subset of the real one


def _kind(type_: GraphQLNamedType) -> str:
    kinds: tuple[tuple[type, str], ...] = (
        (GraphQLObjectType, "object"), (GraphQLInputObjectType, "input"),
        (GraphQLEnumType, "enum"), (GraphQLScalarType, "scalar"),
        (GraphQLInterfaceType, "interface"), (GraphQLUnionType, "union"))
    for cls, name in kinds:
        if isinstance(type_, cls):
            return name
    return type(type_).__name__


def _is_required(type_: Any, default: Any) -> bool:
    return isinstance(type_, GraphQLNonNull) and default is Undefined


def _field_problems(where: str, field: GraphQLField, real: GraphQLField) -> list[str]:
    problems = []
    if str(field.type) != str(real.type):
        problems.append(f"{where}: type {field.type} but the real one is {real.type}")
    return problems + _member_problems(lambda name: f"{where}({name}:)", field.args, real.args,
                                       "argument not in the real schema")


def _member_problems(label: Callable[[str], str], mine: Mapping[str, Any],
                     real: Mapping[str, Any], unknown: str) -> list[str]:
    """Arguments or input fields: each of ours exists there with the same type, and each one the
    real schema requires is ours too (else the stand-in accepts what the service refuses)."""
    problems = []
    for name, member in mine.items():
        real_member = real.get(name)
        if real_member is None:
            problems.append(f"{label(name)}: {unknown}")
        elif str(member.type) != str(real_member.type):
            problems.append(f"{label(name)}: type {member.type} but the real one is "
                            f"{real_member.type}")
    for name, real_member in real.items():
        if _is_required(real_member.type, real_member.default_value) and name not in mine:
            problems.append(f"{label(name)}: required by the real schema ({real_member.type})"
                            " but missing from the stand-in")
    return problems


def _type_problems(type_: GraphQLNamedType, real: GraphQLNamedType) -> list[str]:
    name = type_.name
    if _kind(type_) != _kind(real):
        return [f"{name}: a {_kind(type_)} here but a {_kind(real)} in the real schema"]
    problems: list[str] = []
    if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
        assert isinstance(real, GraphQLObjectType | GraphQLInterfaceType)
        for field_name, field in type_.fields.items():
            real_field = real.fields.get(field_name)
            if real_field is None:
                problems.append(f"{name}.{field_name}: not in the real schema")
            else:
                problems += _field_problems(f"{name}.{field_name}", field, real_field)
        real_interfaces = {interface.name for interface in real.interfaces}
        for interface in type_.interfaces:
            if interface.name not in real_interfaces:
                problems.append(f"{name}: implements {interface.name}, the real type doesn't")
    elif isinstance(type_, GraphQLInputObjectType):
        assert isinstance(real, GraphQLInputObjectType)
        problems += _member_problems(lambda field_name: f"{name}.{field_name}", type_.fields,
                                     real.fields, "not in the real schema")
    elif isinstance(type_, GraphQLEnumType):
        assert isinstance(real, GraphQLEnumType)
        for value in type_.values:
            if value not in real.values:
                problems.append(f"{name}.{value}: enum value not in the real schema")
    elif isinstance(type_, GraphQLUnionType):
        assert isinstance(real, GraphQLUnionType)
        real_members = {member.name for member in real.types}
        for member in type_.types:
            if member.name not in real_members:
                problems.append(f"{name}: member {member.name} not in the real union")
    return problems


def schema_subset_problems(standin: GraphQLSchema, real: GraphQLSchema) -> list[str]:
    """Where the stand-in's schema is not a subset of the real one; [] when it is."""
    problems: list[str] = []
    roots = (("Query", standin.query_type, real.query_type),
             ("Mutation", standin.mutation_type, real.mutation_type),
             ("Subscription", standin.subscription_type, real.subscription_type))
    root_names: set[str] = set()
    for label, root, real_root in roots:
        if root is None:
            continue
        root_names.add(root.name)
        if real_root is None:
            problems.append(f"{label}: the real schema has no {label.lower()} root")
            continue
        root_problems = _type_problems(root, real_root)
        if root.name != label:
            root_problems = [problem.replace(root.name, label, 1) for problem in root_problems]
        problems += root_problems
    for name, type_ in sorted(standin.type_map.items()):
        if name.startswith("__") or name in _BUILT_IN_SCALARS or name in root_names:
            continue
        real_type = real.type_map.get(name)
        if real_type is None:
            problems.append(f"{name}: not in the real schema")
            continue
        problems += _type_problems(type_, real_type)
    return problems
