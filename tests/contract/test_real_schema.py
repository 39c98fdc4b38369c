"""The project's GraphQL, and the stand-in API's schema, against the real Animl API's schema."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import build_schema

from tests.conftest import REPO
from tests.contract.schema_check import (
    REAL_SCHEMA_PATH,
    document_problems,
    load_real_schema,
    project_documents,
    project_formatted_documents,
    request_problems,
    schema_subset_problems,
)

STANDIN_SCHEMA_PATH = REPO / "animl_local" / "standin_api" / "schema.graphql"

UPDATE_BATCH = ("mutation B($input: UpdateBatchInput!) "
                "{ updateBatch(input: $input) { batch { _id } } }")
IMAGE_ERRORS = ("query E($input: QueryImageErrorsInput!) { imageErrors(input: $input) "
                "{ pageInfo { next hasNext count } errors { _id image error } } }")
CREATE_UPLOAD = ("mutation U($input: CreateUploadInput!) "
                 "{ createUpload(input: $input) { batch } }")


def test_the_real_schema_is_where_the_checker_reads_it() -> None:
    assert REAL_SCHEMA_PATH == REPO.parent / "shared" / "contracts" / "animl-api.graphql"
    assert REAL_SCHEMA_PATH.is_file()


def test_every_document_in_the_project_is_valid_against_the_real_schema() -> None:
    documents = project_documents()
    assert documents, "no GraphQL documents found in the project's source"
    schema = load_real_schema()
    problems = {where: found for where, text in documents.items()
                if (found := document_problems(schema, text))}
    assert problems == {}


def test_no_graphql_document_is_built_with_an_f_string() -> None:
    # A document with interpolations can't be checked against the schema: use variables.
    assert project_formatted_documents() == {}


# Requests the real service refuses; each is a mistake this project once made.
REFUSED: list[tuple[str, str, dict[str, Any] | None]] = [
    ("no batch query",
     "query Batch($id: String!) { batch(_id: $id) { _id } }", {"id": "batch-1"}),
    ("Image has no hash",
     "query Image($input: QueryImageInput!) { image(input: $input) { _id hash } }", None),
    ("createUpload takes no overrideSerial",
     CREATE_UPLOAD, {"input": {"originalFile": "a.zip", "overrideSerial": "X"}}),
    ("createInternalLabels takes imageId once, and labels with mlModel, version and bbox",
     "mutation L($input: CreateInternalLabelsInput!) "
     "{ createInternalLabels(input: $input) { isOk } }",
     {"input": {"labels": [{"imageId": "p:h", "mlModelId": "m", "labelId": "animal",
                            "conf": 0.9}]}}),
    ("createImageError requires batch",
     "mutation E($input: CreateImageErrorInput!) { createImageError(input: $input) { _id } }",
     {"input": {"error": "x", "image": "i"}}),
    ("total is an Int", UPDATE_BATCH, {"input": {"_id": "b", "total": "three"}}),
    ("a Date is an ISO string, not a number",
     UPDATE_BATCH, {"input": {"_id": "b", "uploadComplete": 12345}}),
    ("a Date literal is a string too",
     'mutation { updateBatch(input: {_id: "b", uploadComplete: 12345}) { batch { _id } } }',
     None),
    ("a required variable is missing", UPDATE_BATCH, None),
    ("syntax error", "mutation B($input: UpdateBatchInput!) { updateBatch(", None),
    ("imageErrors requires filters", IMAGE_ERRORS, {"input": {"limit": 300}}),
    ("imageErrors filters by batch, given inside filters",
     IMAGE_ERRORS, {"input": {"batch": "b", "filters": {"batch": "b"}}}),
]

ACCEPTED: list[tuple[str, str, dict[str, Any] | None]] = [
    ("createUpload with a part count",
     CREATE_UPLOAD, {"input": {"originalFile": "a.zip", "partCount": 2}}),
    ("updateBatch with overrideSerial",
     UPDATE_BATCH, {"input": {"_id": "b", "overrideSerial": "X"}}),
    ("updateBatch with Dates as ISO strings",
     UPDATE_BATCH, {"input": {"_id": "b", "total": 3,
                              "uploadComplete": "2024-05-01T12:00:00.000Z"}}),
    ("image by id",
     "query Image($input: QueryImageInput!) "
     "{ image(input: $input) { _id batchId path originalFileName } }",
     {"input": {"imageId": "project:hash"}}),
    ("createImageError with batch",
     "mutation E($input: CreateImageErrorInput!) { createImageError(input: $input) { _id } }",
     {"input": {"error": "x", "image": "i", "batch": "b"}}),
    ("imageErrors of a batch, a page after a cursor, newest first",
     IMAGE_ERRORS, {"input": {"filters": {"batch": "b"}, "limit": 300, "next": "c",
                              "paginatedField": "created", "sortAscending": False}}),
    ("createInternalLabels as the real API takes them",
     "mutation L($input: CreateInternalLabelsInput!) "
     "{ createInternalLabels(input: $input) { isOk } }",
     {"input": {"imageId": "p:h", "labels": [
         {"labelId": "animal", "conf": 0.9, "bbox": [0, 0, 1, 1], "mlModel": "megadetector",
          "mlModelVersion": "v5.0a"}]}}),
]


@pytest.mark.parametrize(("query", "variables"), [case[1:] for case in REFUSED],
                         ids=[case[0] for case in REFUSED])
def test_the_checker_refuses_what_the_real_service_refuses(
        query: str, variables: dict[str, Any] | None) -> None:
    assert request_problems(load_real_schema(), query, variables) != []


@pytest.mark.parametrize(("query", "variables"), [case[1:] for case in ACCEPTED],
                         ids=[case[0] for case in ACCEPTED])
def test_the_checker_accepts_what_the_real_service_accepts(
        query: str, variables: dict[str, Any] | None) -> None:
    assert request_problems(load_real_schema(), query, variables) == []


def test_the_standin_schema_is_a_subset_of_the_real_one() -> None:
    standin = build_schema(STANDIN_SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema_subset_problems(standin, load_real_schema()) == []


# Small stand-in schemas, each drifting from the real one in exactly one way, and the problem
# the check must report. IMAGE_QUERY is a correct Query root for the snippets that need one.
IMAGE_QUERY = ("type Query { image(input: QueryImageInput!): Image } "
               "input QueryImageInput { imageId: ID! } ")
DRIFTS: list[tuple[str, str, str]] = [
    ("a query the real API lacks",
     "type Query { batch(_id: String!): Batch } type Batch { _id: String! }",
     "Query.batch: not in the real schema"),
    ("a field the real type lacks",
     "type Image { _id: ID! hash: String! } type Query { image(input: QueryImageInput!): Image }"
     " input QueryImageInput { imageId: ID! }",
     "Image.hash: not in the real schema"),
    ("an input without a field the real one requires",
     IMAGE_QUERY + "type Image { _id: ID! } type ImageError { _id: String! } "
     "input CreateImageErrorInput { error: String!, image: String! } "
     "type Mutation { createImageError(input: CreateImageErrorInput!): ImageError }",
     "CreateImageErrorInput.batch: required by the real schema (String!) but missing from the "
     "stand-in"),
    ("a field with other nullability",
     IMAGE_QUERY + "type Image { _id: ID! } type Batch { _id: String } "
     "type BatchPayload { batch: Batch } input UpdateBatchInput { _id: String! } "
     "type Mutation { updateBatch(input: UpdateBatchInput!): BatchPayload }",
     "Batch._id: type String but the real one is String!"),
    ("a list field with other nullability",
     IMAGE_QUERY + "type Image { _id: ID! } type Batch { _id: String!, errors: [BatchError!]! } "
     "type BatchError { _id: String! } type BatchPayload { batch: Batch } "
     "input UpdateBatchInput { _id: String! } "
     "type Mutation { updateBatch(input: UpdateBatchInput!): BatchPayload }",
     "Batch.errors: type [BatchError!]! but the real one is [BatchError!]"),
    ("an input field required here but optional in the real one",
     IMAGE_QUERY + "type Image { _id: ID! } "
     "input CreateUploadInput { originalFile: String!, partCount: Int! } "
     "type CreateUploadPayload { batch: String! } "
     "type Mutation { createUpload(input: CreateUploadInput!): CreateUploadPayload }",
     "CreateUploadInput.partCount: type Int! but the real one is Int"),
    ("an input field the real one lacks",
     IMAGE_QUERY + "type Image { _id: ID! } "
     "input CreateUploadInput { originalFile: String!, overrideSerial: String } "
     "type CreateUploadPayload { batch: String! } "
     "type Mutation { createUpload(input: CreateUploadInput!): CreateUploadPayload }",
     "CreateUploadInput.overrideSerial: not in the real schema"),
    ("an enum value the real enum lacks",
     "enum filterEnum { CURRENT COMPLETED FAILED } input QueryBatchesInput { filter: filterEnum }"
     " type BatchesConnection { batches: [Batch!]! } type Batch { _id: String! } "
     "type Query { batches(input: QueryBatchesInput!): BatchesConnection }",
     "filterEnum.FAILED: enum value not in the real schema"),
    ("a root field without an argument the real one requires",
     "type Image { _id: ID! } type Query { image: Image }",
     "Query.image(input:): required by the real schema (QueryImageInput!) but missing from the "
     "stand-in"),
    ("an argument the real field lacks",
     "type Image { _id: ID! } input QueryImageInput { imageId: ID! } "
     "type Query { image(input: QueryImageInput!, hash: String): Image }",
     "Query.image(hash:): argument not in the real schema"),
    ("an argument of another type",
     "type Image { _id: ID! } input QueryImageInput { imageId: ID! } "
     "type Query { image(input: QueryImageInput): Image }",
     "Query.image(input:): type QueryImageInput but the real one is QueryImageInput!"),
    ("a type of another kind",
     IMAGE_QUERY + "enum Date { TODAY } type Image { _id: ID!, dateTimeOriginal: Date! }",
     "Date: a enum here but a scalar in the real schema"),
    ("a type the real schema lacks",
     IMAGE_QUERY + "type Image { _id: ID! } type Camera { _id: String! }",
     "Camera: not in the real schema"),
    ("a root field of another type",
     "type Batch { _id: String! } type Query { batches(input: QueryBatchesInput!): [Batch!]! } "
     "input QueryBatchesInput { limit: Int }",
     "Query.batches: type [Batch!]! but the real one is BatchesConnection"),
    ("a custom scalar where the real field is a String",
     IMAGE_QUERY + "type Image { _id: ID! } scalar Date type Batch { _id: Date! } "
     "type BatchPayload { batch: Batch } input UpdateBatchInput { _id: String! } "
     "type Mutation { updateBatch(input: UpdateBatchInput!): BatchPayload }",
     "Batch._id: type Date! but the real one is String!"),
]


@pytest.mark.parametrize(("sdl", "expected"), [case[1:] for case in DRIFTS],
                         ids=[case[0] for case in DRIFTS])
def test_the_subset_check_catches_drift(sdl: str, expected: str) -> None:
    assert schema_subset_problems(build_schema(sdl), load_real_schema()) == [expected]


def test_a_correct_subset_has_no_problems() -> None:
    sdl = """
    scalar Date
    scalar JSONObject
    type Query { image(input: QueryImageInput!): Image }
    type Mutation {
      createUpload(input: CreateUploadInput!): CreateUploadPayload
      createImage(input: CreateImageInput!): CreateImagePayload
      updateBatch(input: UpdateBatchInput!): BatchPayload
      createImageError(input: CreateImageErrorInput!): ImageError
    }
    input QueryImageInput { imageId: ID! }
    input CreateUploadInput { originalFile: String!, partCount: Int }
    type CreateUploadPayload { batch: String! }
    input CreateImageInput { md: JSONObject! }
    type CreateImagePayload { imageAttempt: ImageAttempt }
    type ImageAttempt { _id: ID! }
    input UpdateBatchInput { _id: String!, total: Int, uploadComplete: Date }
    type BatchPayload { batch: Batch }
    type Batch { _id: String!, projectId: String!, total: Int, processingEnd: Date }
    input CreateImageErrorInput { error: String!, image: String!, batch: String! }
    type ImageError { _id: String!, error: String! }
    type Image { _id: ID!, batchId: String, path: String, originalFileName: String }
    """
    assert schema_subset_problems(build_schema(sdl), load_real_schema()) == []


def test_the_real_schema_is_not_weakened_by_loading() -> None:
    # The real schema is read as-is: it is a subset of itself, and Date refuses non-strings.
    real = load_real_schema()
    assert schema_subset_problems(real, real) == []
    assert request_problems(real, UPDATE_BATCH,
                            {"input": {"_id": "b", "processingEnd": True}}) != []
