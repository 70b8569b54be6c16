"""Fixtures of the batch tier tests: a signed directory of test tasks, a recording context."""

from __future__ import annotations

import hashlib
import os
import shutil
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings as django_settings

from executors.base import ExecutionContext
from executors.batch.executor import BatchExecutor, signature_file, signing_key, task_dirs
from executors.batch.manifest import manifest_load, manifest_sign, task_names

QUOTA = {"cpu_seconds": 30, "memory_mb": 1024, "wall_seconds": 60, "processes": 16}


@dataclass
class Recorder:
    progress: list[tuple[int, str | None]] = field(default_factory=list)
    messages: list[tuple[str, str]] = field(default_factory=list)
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)

    def ctx(self, handler: str, run_id: str | None = None, **kw: Any) -> ExecutionContext:
        return ExecutionContext(
            run_id=run_id or f"t-{uuid.uuid4().hex[:12]}",
            process_id=handler,
            handler=handler,
            progress=lambda p, m=None: self.progress.append((p, m)),
            message=lambda level, text: self.messages.append((level, text)),
            attach=lambda name, data, media: self.files.__setitem__(name, (data, media)),
            **kw,
        )


@pytest.fixture
def batch_tasks(settings: Any) -> Iterator[Callable[..., Path]]:
    """A task directory of this test (traversable by the task user) and its signatures file;
    returns ``make(name, source, **quota)`` that writes and signs a task."""
    base = Path(django_settings.DATA_DIR) / f"batch-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    base.mkdir(parents=True)
    os.chmod(base, 0o755)
    settings.HONUA = {
        **settings.HONUA,
        "BATCH": {**settings.HONUA["BATCH"], "TASK_DIRS": [str(base / "tasks")],
                  "SIGNATURES": str(base / "signatures.json")},
    }
    dirs = task_dirs()
    for name in task_names(dirs):  # the shipped tasks, signed with this test's file
        manifest_sign(manifest_load(name, dirs), key=signing_key(), signatures=signature_file())

    def make(name: str, source: str, *, sign: bool = True, modules: tuple[str, ...] = (), **quota: int) -> Path:
        where = base / "tasks" / name
        where.mkdir(parents=True, exist_ok=True)
        os.chmod(where.parent, 0o755)
        script = textwrap.dedent(source).encode()
        (where / "task.py").write_bytes(script)
        doc = {
            "name": name, "version": "1.0.0", "script": "task.py",
            "sha256": hashlib.sha256(script).hexdigest(), "entry": "run",
            "requires": {"modules": list(modules), "env": []},
            "quota": {**QUOTA, **quota}, "image": "honua/batch-tasks:test",
        }
        (where / "manifest.yaml").write_text(yaml.safe_dump(doc))
        if sign:
            manifest_sign(manifest_load(name, task_dirs()), key=signing_key(), signatures=signature_file())
        return where

    yield make
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def batch() -> BatchExecutor:
    return BatchExecutor()


def processes_of(run_id: str) -> list[int]:
    """Pids whose command line names the run (the task's argv carries its staging URIs)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if run_id.encode() in cmdline and int(entry) != os.getpid():
            found.append(int(entry))
    return found
