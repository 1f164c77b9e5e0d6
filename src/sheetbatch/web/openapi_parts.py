"""The building blocks of the OpenAPI document: `$ref`s, objects, JSON bodies, error answers
and id parameters (shared by the REST part in `openapi` and the schedules' part)."""

from __future__ import annotations

from typing import Any

from progress.schema import ID_PATTERN


def ref(name: str) -> dict[str, str]:
    """A reference to the component schema `name`."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(kind: str, **extra: Any) -> dict[str, Any]:
    """A schema of `kind` that may also be null."""
    return {"type": kind, "nullable": True, **extra}


def obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """An object schema; every property is required unless `required` says otherwise."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """An answer (or request body) of JSON matching `schema`."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error(description: str) -> dict[str, Any]:
    """An error answer: the `Error` object."""
    return json_body(ref("Error"), description)


def id_param(name: str, where: str = "path") -> dict[str, Any]:
    """A job, batch or schedule id parameter, with the store's id rule."""
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": {"type": "string", "pattern": ID_PATTERN},
    }
