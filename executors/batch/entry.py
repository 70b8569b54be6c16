"""The task process: ``python -m executors.batch.entry <inputs-uri> <output-prefix-uri>``.

Also the container entry point of remote runners, so it never imports Django. It reads the
staged ``inputs.json``, checks the script against the sha256 Honua verified, runs the task's
entry function and writes ``result.json`` (status, outputs, error) under the output prefix.
Progress and messages go, as JSON lines, to the file named by HONUA_BATCH_EVENTS.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from executors.batch.staging import local_path, uri_join
from executors.batch.staging import uri_read as _uri_read
from executors.batch.staging import uri_write as _uri_write

NETWORK_EVENTS = {"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo"}


class NetworkRefused(PermissionError):
    """A task tried to use the network."""


def _refuse_network(event: str, args: tuple[Any, ...]) -> None:
    if event not in NETWORK_EVENTS:
        return
    if event != "socket.getaddrinfo":
        sock = args[0]
        family = getattr(sock, "family", None)
        if family is not None and int(family) not in (2, 10):  # AF_INET, AF_INET6; AF_UNIX is local
            return
        target = args[1] if len(args) > 1 else ""
    else:
        target = args[0] if args else ""
    raise NetworkRefused(f"network access is disabled for batch tasks ({event} {target!r})")


_staging = threading.local()


def _refuse_network_but_staging(event: str, args: tuple[Any, ...]) -> None:
    if not getattr(_staging, "active", False):
        _refuse_network(event, args)


def install_network_guard(*, remote_staging: bool = False) -> None:
    """Refuse IP socket connect/bind/send and name lookups from Python code (the fallback
    where network namespaces are unavailable; in a namespace it gives the clear message).

    With remote staging (s3:// URIs: an AWS Batch container, whose network the job's
    VPC and role bound) the entry point's own staging reads and writes are let through, the
    task's code is not. Local staging never lets anything through."""
    sys.addaudithook(_refuse_network_but_staging if remote_staging else _refuse_network)


@contextlib.contextmanager
def _staging_io() -> Iterator[None]:
    _staging.active = True
    try:
        yield
    finally:
        _staging.active = False


def uri_read(uri: str) -> bytes:
    with _staging_io():
        return _uri_read(uri)


def uri_write(uri: str, data: bytes) -> None:
    with _staging_io():
        _uri_write(uri, data)


class TaskInputError(Exception):
    """A task raises it (as ``ctx.InvalidInput``) for inputs only it can judge."""


class TaskContext:
    """What the entry function gets besides its inputs."""

    InvalidInput = TaskInputError

    def __init__(self, workdir: Path, events: Path | None, context: dict[str, Any] | None = None) -> None:
        self.workdir = workdir
        self._events = events
        context = context or {}
        # The run's limits (max_cells...) and CRSs: work in process_srid (else the input's),
        # write in out_srid (else the input's), as the in-process tier does.
        self.limits: dict[str, Any] = dict(context.get("limits") or {})
        self.out_srid: int | None = context.get("out_srid")
        self.process_srid: int | None = context.get("process_srid")

    def _emit(self, doc: dict[str, Any]) -> None:
        if self._events is None:
            return
        with self._events.open("a") as fh:
            fh.write(json.dumps(doc) + "\n")

    def progress(self, percent: int, message: str | None = None) -> None:
        self._emit({"type": "progress", "percent": int(percent), "message": message})

    def message(self, level: str, text: str) -> None:
        self._emit({"type": "message", "level": level, "text": str(text)})

    def file_output(self, filename: str, media_type: str) -> dict[str, str]:
        """Mark a file the task wrote in ``workdir`` as an output value."""
        if "/" in filename or filename.startswith("."):
            raise ValueError(f"output file name {filename!r} must be a plain name")
        return {"file": filename, "media_type": media_type}


def _error(code: str, message: str, tb: str = "") -> dict[str, Any]:
    return {"status": "failed", "error": {"code": code, "message": message, "traceback": tb[-4000:]}}


def _classify(exc: BaseException, quota: dict[str, Any]) -> dict[str, Any]:
    tb = "".join(traceback.format_exception(exc))
    if isinstance(exc, TaskInputError):
        return _error("invalid-input", str(exc), tb)
    if isinstance(exc, MemoryError):
        return _error(
            "memory-limit-exceeded",
            f"the task ran out of memory (quota {quota.get('memory_mb')} MB of address space)",
            tb,
        )
    if isinstance(exc, NetworkRefused):
        return _error("network-refused", str(exc), tb)
    if isinstance(exc, socket.gaierror) or (
        isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN)
    ):
        return _error("network-refused", f"network access is disabled for batch tasks ({exc})", tb)
    if isinstance(exc, BlockingIOError) or (isinstance(exc, OSError) and exc.errno == errno.EAGAIN):
        return _error(
            "process-limit-exceeded",
            f"the task hit its process limit ({quota.get('processes')} processes): {exc}",
            tb,
        )
    return _error("task-error", f"{type(exc).__name__}: {exc}", tb)


def _load_script(script: dict[str, Any]) -> types.ModuleType:
    """The verified script: a local path (local runner) or a staged copy by URI (remote
    runners: the container image carries the environment, the run carries the script)."""
    sha256 = script["sha256"]
    if script.get("uri"):
        source = uri_read(script["uri"])
        path = Path(script.get("name") or "task") / "task.py"
    else:
        path = Path(script["path"])
        source = path.read_bytes()
    if hashlib.sha256(source).hexdigest() != sha256:
        raise RuntimeError(f"script {path.name} does not match the verified sha256")
    module = types.ModuleType(f"honua_batch_task_{path.parent.name}")
    module.__file__ = str(path)
    exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102  (the signed script)
    return module


def _resolve_inputs(value: Any) -> Any:
    """Staged file inputs ({"href", "media_type", "name"}) become local paths for the task."""
    if isinstance(value, dict):
        if set(value) >= {"href", "staged"}:
            href = value["href"]
            if href.startswith("file:"):
                path = local_path(href)
            else:
                path = Path(os.getcwd()) / "inputs" / Path(value.get("name") or "input").name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(uri_read(href))
            return {"path": str(path), "media_type": value.get("media_type"), "name": value.get("name")}
        return {k: _resolve_inputs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_inputs(v) for v in value]
    return value


def _publish_outputs(value: Any, workdir: Path, prefix: str) -> Any:
    if isinstance(value, dict):
        if set(value) == {"file", "media_type"}:
            name = Path(value["file"]).name
            uri = uri_join(prefix, name)
            if not prefix.startswith("file:"):
                uri_write(uri, (workdir / name).read_bytes())
            return {"href": uri, "media_type": value["media_type"], "name": name}
        return {k: _publish_outputs(v, workdir, prefix) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_publish_outputs(v, workdir, prefix) for v in value]
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    return value


def _on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(143)


def run(inputs_uri: str, output_prefix: str) -> int:
    """Run one task; returns the process exit status (0: result.json says succeeded)."""
    install_network_guard(remote_staging=not (inputs_uri.startswith("file:") and output_prefix.startswith("file:")))
    signal.signal(signal.SIGTERM, _on_sigterm)
    doc = json.loads(uri_read(inputs_uri))
    quota = doc.get("quota") or {}
    events = Path(os.environ["HONUA_BATCH_EVENTS"]) if os.environ.get("HONUA_BATCH_EVENTS") else None
    if output_prefix.startswith("file:"):
        workdir = local_path(output_prefix)
    else:
        workdir = Path(os.getcwd()) / "out"
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = TaskContext(workdir, events, doc.get("context"))
    started = time.monotonic()
    result: dict[str, Any]
    try:
        missing = []
        for name in doc.get("modules") or []:
            try:
                importlib.import_module(name)
            except ImportError as exc:
                missing.append(f"{name} ({exc})")
        absent_env = [k for k in doc.get("env") or [] if k not in os.environ]
        if missing or absent_env:
            result = _error(
                "environment-missing",
                "the task's environment is incomplete: "
                + "; ".join([f"module {m} does not import" for m in missing] + [f"env {k} unset" for k in absent_env]),
            )
        else:
            module = _load_script(doc["script"])
            function = getattr(module, doc["entry"])
            outputs = function(_resolve_inputs(doc.get("inputs") or {}), ctx)
            if not isinstance(outputs, dict):
                raise TypeError(f"the task returned {type(outputs).__name__}, not a dict of outputs")
            result = {"status": "succeeded", "outputs": _publish_outputs(outputs, workdir, output_prefix)}
    except SystemExit as exc:
        result = _error("terminated", f"the task was stopped (exit {exc.code})")
    except BaseException as exc:  # the task boundary: every failure becomes result.json
        result = _classify(exc, quota)
    result["seconds"] = round(time.monotonic() - started, 3)
    uri_write(uri_join(output_prefix, "result.json"), json.dumps(result).encode())
    return 0 if result["status"] == "succeeded" else 1


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m executors.batch.entry <inputs-uri> <output-prefix-uri>", file=sys.stderr)
        return 2
    return run(argv[0], argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
