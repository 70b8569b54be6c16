"""Validate documents against the official OGC API - Processes 1.0 schemas (shared/).

Recipe of shared/ogcapi-processes/schemas/README.md: the YAML files are OpenAPI 3.0 schema
objects, loaded into a ``referencing`` registry by ``file://`` URI and validated with Draft 4.
Known quirks handled on purpose: ``oneOf`` is read as ``anyOf`` (overlapping branches,
ogcapi-processes#350; property *names* under ``properties:`` stay, schema.yaml has one called
``oneOf``), and subscriber.yaml's ``required: [successUrl]`` typo is dropped.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SCHEMAS = (
    Path(__file__).resolve().parents[1].parent / "shared/ogcapi-processes/schemas/part1-1.0/openapi/schemas"
)


def _lenient(node: Any, *, names: bool = False) -> Any:
    if isinstance(node, dict):
        if names:  # keys are property names: keep them, their values are schemas
            return {k: _lenient(v) for k, v in node.items()}
        return {
            ("anyOf" if k == "oneOf" else k): _lenient(v, names=(k == "properties"))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_lenient(v) for v in node]
    return node


def _load(path: Path) -> Any:
    data = _lenient(yaml.safe_load(path.read_text()))
    if path.name == "subscriber.yaml":
        data.pop("required", None)
    return data


def _retrieve(uri: str) -> Resource:
    return Resource.from_contents(_load(Path(uri.removeprefix("file://"))), default_specification=DRAFT4)


REGISTRY: Registry = Registry(retrieve=_retrieve)  # type: ignore[call-arg]


@cache
def _validator(name: str) -> Draft4Validator:
    path = (SCHEMAS / name).resolve()
    if not path.exists():
        raise FileNotFoundError(path)
    return Draft4Validator(
        {"$ref": path.as_uri()}, registry=REGISTRY, format_checker=Draft4Validator.FORMAT_CHECKER
    )


def errors(name: str, doc: Any) -> list[str]:
    """Messages of every violation of schema ``name`` (e.g. "statusInfo.yaml") by ``doc``."""
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _validator(name).iter_errors(doc)]


def assert_valid(name: str, doc: Any) -> Any:
    """``doc`` when it is valid against schema ``name``; an AssertionError listing why not."""
    problems = errors(name, doc)
    assert not problems, f"{name}: " + "; ".join(problems[:10])
    return doc
