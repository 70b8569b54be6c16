"""Batch task manifests and their HMAC signatures (no Django: the entry point shares it).

A task is ``<tasks dir>/<name>/task.py`` plus ``manifest.yaml``. The manifest is signed
with HMAC-SHA256 over its canonical JSON (sorted keys, no whitespace, UTF-8); the
signatures live outside the code, in a JSON file written by ``manage.py batch_sign``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

BUILTIN_TASKS_DIR = Path(__file__).resolve().parent / "tasks"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
MANIFEST_KEYS = {"name", "version", "script", "sha256", "entry", "requires", "quota", "image", "description"}
QUOTA_KEYS = ("cpu_seconds", "memory_mb", "wall_seconds", "processes")


class ManifestRefused(Exception):
    """A task that must not run: unknown, unsigned, badly signed or altered. ``code`` says which."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Quota:
    cpu_seconds: int
    memory_mb: int
    wall_seconds: int
    processes: int

    def to_json(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in QUOTA_KEYS}


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest; ``doc`` is exactly what is signed."""

    name: str
    version: str
    script: Path
    sha256: str
    entry: str
    modules: tuple[str, ...]
    env: tuple[str, ...]
    quota: Quota
    image: str
    doc: dict[str, Any]

    def canonical(self) -> bytes:
        return canonical_json(self.doc)


def canonical_json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sign(doc: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical_json(doc), hashlib.sha256).hexdigest()


def task_dir(name: str, dirs: list[Path]) -> Path | None:
    """The directory of task ``name``: the first of ``dirs`` that has it."""
    if not NAME_RE.match(name):
        return None
    for base in dirs:
        candidate = base / name
        if (candidate / "manifest.yaml").is_file():
            return candidate
    return None


def task_names(dirs: list[Path]) -> list[str]:
    names: list[str] = []
    for base in dirs:
        if base.is_dir():
            names.extend(
                p.name for p in sorted(base.iterdir()) if (p / "manifest.yaml").is_file() and p.name not in names
            )
    return names


def manifest_load(name: str, dirs: list[Path]) -> Manifest:
    """Parse the manifest of ``name``; ManifestRefused(code="unknown-task") when there is none
    and code="invalid-manifest" when it is malformed."""
    where = task_dir(name, dirs)
    if where is None:
        raise ManifestRefused(f"unknown batch task {name!r}", code="unknown-task")
    try:
        doc = yaml.safe_load((where / "manifest.yaml").read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ManifestRefused(f"batch task {name!r}: unreadable manifest ({exc})", code="invalid-manifest") from exc
    problems = manifest_problems(doc, name)
    if problems:
        raise ManifestRefused(f"batch task {name!r}: " + "; ".join(problems), code="invalid-manifest")
    quota = doc["quota"]
    requires = doc.get("requires") or {}
    return Manifest(
        name=doc["name"],
        version=str(doc["version"]),
        script=where / doc["script"],
        sha256=doc["sha256"],
        entry=doc["entry"],
        modules=tuple(requires.get("modules") or ()),
        env=tuple(requires.get("env") or ()),
        quota=Quota(**{k: int(quota[k]) for k in QUOTA_KEYS}),
        image=str(doc.get("image") or ""),
        doc=doc,
    )


def manifest_problems(doc: Any, name: str) -> list[str]:
    """What is wrong with a manifest document (empty: nothing)."""
    if not isinstance(doc, dict):
        return ["the manifest is not a mapping"]
    problems = [f"unknown key {k!r}" for k in sorted(set(doc) - MANIFEST_KEYS)]
    for key in ("name", "version", "script", "sha256", "entry", "quota"):
        if key not in doc:
            problems.append(f"missing {key!r}")
    if problems:
        return problems
    if doc["name"] != name:
        problems.append(f"name {doc['name']!r} does not match its directory {name!r}")
    script = str(doc["script"])
    if "/" in script or script.startswith(".") or not script.endswith(".py"):
        problems.append("script must be a .py file next to the manifest")
    if not re.fullmatch(r"[0-9a-f]{64}", str(doc["sha256"])):
        problems.append("sha256 must be 64 lowercase hex digits")
    if not str(doc["entry"]).isidentifier():
        problems.append("entry must be a function name")
    quota = doc["quota"]
    if not isinstance(quota, dict) or set(quota) != set(QUOTA_KEYS):
        problems.append(f"quota must have exactly {', '.join(QUOTA_KEYS)}")
    elif not all(isinstance(quota[k], int) and quota[k] > 0 for k in QUOTA_KEYS):
        problems.append("quota values must be positive integers")
    requires = doc.get("requires") or {}
    if not isinstance(requires, dict) or set(requires) - {"modules", "env"}:
        problems.append("requires takes modules and env (lists)")
    return problems


class SignatureFile:
    """``{"signatures": {name: {"version", "hmac"}}}`` in one JSON file, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, dict[str, str]]:
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}
        sigs = doc.get("signatures") if isinstance(doc, dict) else None
        return sigs if isinstance(sigs, dict) else {}

    def write(self, signatures: dict[str, dict[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"signatures": signatures}, indent=2, sort_keys=True))
        os.replace(tmp, self.path)


def manifest_sign(manifest: Manifest, *, key: bytes, signatures: SignatureFile) -> str:
    """Sign a manifest whose script matches its sha256; record the signature."""
    actual = file_sha256(manifest.script)
    if actual != manifest.sha256:
        raise ManifestRefused(
            f"batch task {manifest.name!r}: the script's sha256 is {actual}, the manifest says "
            f"{manifest.sha256}; update the manifest (batch_sign --rehash) after reviewing the script",
            code="script-altered",
        )
    sigs = signatures.read()
    sigs[manifest.name] = {"version": manifest.version, "hmac": sign(manifest.doc, key)}
    signatures.write(sigs)
    return sigs[manifest.name]["hmac"]


def manifest_verify(name: str, *, dirs: list[Path], key: bytes, signatures: SignatureFile) -> Manifest:
    """The manifest of ``name`` if it is known, signed with ``key`` and its script unaltered;
    else ManifestRefused with code unknown-task, unsigned-task, bad-signature or script-altered."""
    manifest = manifest_load(name, dirs)
    entry = signatures.read().get(name)
    if not entry or not isinstance(entry, dict) or not entry.get("hmac"):
        raise ManifestRefused(
            f"batch task {name!r} is not signed (run manage.py batch_sign {name})", code="unsigned-task"
        )
    if not hmac.compare_digest(sign(manifest.doc, key), str(entry["hmac"])):
        raise ManifestRefused(
            f"batch task {name!r}: the manifest's signature is invalid (the manifest changed after "
            "signing, or another key signed it)",
            code="bad-signature",
        )
    try:
        actual = file_sha256(manifest.script)
    except OSError as exc:
        raise ManifestRefused(f"batch task {name!r}: script missing ({exc})", code="script-altered") from exc
    if not hmac.compare_digest(actual, manifest.sha256):
        raise ManifestRefused(
            f"batch task {name!r}: the script was altered (sha256 {actual}, signed {manifest.sha256})",
            code="script-altered",
        )
    return manifest
