"""The local runner: a sandboxed subprocess per task (the default batch runner).

The task runs as an unprivileged user in its own session, with RLIMIT_CPU / RLIMIT_AS /
RLIMIT_NPROC, its own temporary directory as cwd and TMPDIR, and no network: new network,
mount and PID namespaces (``unshare``) where the kernel allows them, else an audit hook
in the task's interpreter that refuses IP sockets. Wall clock, cancellation and timeout
kill the whole process group (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import pwd
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, Any

from executors.base import ExecutionContext
from executors.batch.manifest import Manifest
from executors.batch.staging import LocalStaging, Staging

log = logging.getLogger("honua.executors.batch")

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
UNSHARE = ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "--propagation", "private"]


@dataclass
class BatchJob:
    """One staged task execution, runner-neutral (the AWS runner takes the same)."""

    run_id: str
    manifest: Manifest
    inputs_uri: str
    output_prefix: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class TaskOutcome:
    """What a runner saw: the task's result.json (or None), how the process ended, its logs."""

    result: dict[str, Any] | None
    exit_code: int | None
    signal: int | None
    cpu_seconds: float
    max_rss_mb: float
    stdout: bytes
    stderr: bytes
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    # Set when the runner stopped the task: "cancelled" or "timed_out", with the reason.
    stopped: str | None = None
    stop_reason: str = ""


class Runner:
    """A place to run staged batch tasks. ``run`` blocks until the task ends or the runner
    stopped it (cancellation, timeout: ``TaskOutcome.stopped``)."""

    name = ""

    @property
    def staging(self) -> Staging:
        raise NotImplementedError

    def output_prefix(self, run_id: str) -> str:
        return self.staging.url(f"{run_id}/out")

    def describe(self) -> str:
        raise NotImplementedError

    def run(self, job: BatchJob, ctx: ExecutionContext) -> TaskOutcome:
        raise NotImplementedError

    def cancel(self, run_id: str) -> None:
        raise NotImplementedError


class BoundedCapture:
    """Keeps the first and the last ``limit/2`` bytes of a stream, counting what it drops."""

    def __init__(self, limit: int) -> None:
        self.limit = max(64, limit)
        self.head = bytearray()
        self.tail: collections.deque[bytes] = collections.deque()
        self.tail_size = 0
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.limit // 2 - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail.append(chunk)
            self.tail_size += len(chunk)
            keep = self.limit - self.limit // 2
            while self.tail_size - len(self.tail[0]) >= keep:
                self.tail_size -= len(self.tail.popleft())

    @property
    def truncated(self) -> bool:
        return self.total > self.limit

    def data(self) -> bytes:
        tail = b"".join(self.tail)
        keep = self.limit - self.limit // 2
        tail = tail[-keep:] if len(tail) > keep else tail
        dropped = self.total - len(self.head) - len(tail)
        if dropped <= 0:
            return bytes(self.head) + tail
        return bytes(self.head) + f"\n[... {dropped} bytes truncated ...]\n".encode() + tail


def _pump(stream: IO[bytes], sink: BoundedCapture) -> None:
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not chunk:
            return
        sink.feed(chunk)


@cache
def namespaces_available() -> bool:
    """Whether ``unshare`` can give a task its own network, mount and PID namespaces here."""
    if shutil.which("unshare") is None:
        return False
    try:
        done = subprocess.run([*UNSHARE, "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@dataclass
class LocalRunnerConfig:
    root: Path  # staging root: <root>/<run id>/{inputs.json, inputs/, out/, tmp/}
    python: str
    max_log_bytes: int = 1024 * 1024
    user: str = "nobody"  # the task's user when the server runs as root
    namespaces: str = "auto"  # auto | off
    term_grace_seconds: float = 2.0
    poll_seconds: float = 0.1


class LocalRunner(Runner):
    name = "local"

    def __init__(self, config: LocalRunnerConfig) -> None:
        self.config = config
        self._staging = LocalStaging(config.root)
        self._lock = threading.Lock()
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def staging(self) -> LocalStaging:
        return self._staging

    def use_namespaces(self) -> bool:
        return self.config.namespaces != "off" and os.geteuid() == 0 and namespaces_available()

    def task_user(self) -> tuple[int, int, str] | None:
        """(uid, gid, name) the task runs as, or None to keep the server's own user."""
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam(self.config.user)
        except KeyError:
            entry = pwd.getpwuid(int(self.config.user)) if self.config.user.isdigit() else pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid, entry.pw_name

    def describe(self) -> str:
        user = self.task_user()
        who = f"user {user[2]}" if user else f"the server's user (uid {os.geteuid()})"
        if self.use_namespaces():
            net = "network: none (own network namespace; audit hook too)"
        else:
            net = "network: refused by an audit hook in the task (namespaces unavailable)"
        return f"local runner as {who}; {net}"

    def _command(self, job: BatchJob, hold: Path, user: tuple[int, int, str] | None) -> list[str]:
        q = job.manifest.quota
        sandbox = [
            self.config.python, "-s", "-m", "executors.batch.sandbox",
            "--cpu", str(q.cpu_seconds), "--memory-mb", str(q.memory_mb), "--processes", str(q.processes),
        ]
        if user:
            sandbox += ["--uid", str(user[0]), "--gid", str(user[1])]
        if self.use_namespaces():
            sandbox = [*UNSHARE, *sandbox, "--init", "--private-mounts", "--hold", str(hold)]
        return [
            *sandbox, "--", self.config.python, "-s", "-m", "executors.batch.entry", job.inputs_uri, job.output_prefix,
        ]

    def run(self, job: BatchJob, ctx: ExecutionContext) -> TaskOutcome:
        base = self.staging.path(job.run_id)
        tmp, out, hold = base / "tmp", base / "out", base / "hold"
        events = base / "events.jsonl"
        for d in (tmp, out, hold):
            d.mkdir(parents=True, exist_ok=True)
        events.touch()
        os.chmod(base, 0o755)
        user = self.task_user()
        if user:
            for p in (tmp, out, events):
                os.chown(p, user[0], user[1])
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(tmp),
            "TMPDIR": str(tmp),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(PROJECT_ROOT),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1",
            "PYTHONUNBUFFERED": "1",
            # One thread per BLAS/OpenMP pool: threads count against the process limit.
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "HONUA_BATCH_EVENTS": str(events),
            **job.env,
        }
        if ctx.trace_parent:
            env["TRACEPARENT"] = ctx.trace_parent
        stdout, stderr = BoundedCapture(self.config.max_log_bytes), BoundedCapture(self.config.max_log_bytes)
        wall = float(job.manifest.quota.wall_seconds)
        deadline = time.monotonic() + wall
        timeout_reason = f"the task exceeded its wall-clock limit of {wall:g} s"
        if ctx.deadline is not None and ctx.deadline < deadline:
            deadline, timeout_reason = ctx.deadline, "the run exceeded its maximum runtime"
        proc = subprocess.Popen(
            self._command(job, hold, user),
            cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, close_fds=True,
        )
        with self._lock:
            self._procs[job.run_id] = proc
        pumps = [
            threading.Thread(target=_pump, args=(proc.stdout, stdout), daemon=True),
            threading.Thread(target=_pump, args=(proc.stderr, stderr), daemon=True),
        ]
        for t in pumps:
            t.start()
        offset = 0
        status = 0
        rusage: Any = None
        stop: str | None = None
        try:
            while True:
                pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
                offset = self._forward_events(events, offset, ctx)
                if pid:
                    # cancel() (the keeper's thread) may have stopped it between two polls; a
                    # task that finished its work meanwhile (exit 0) keeps its result
                    finished = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
                    if not finished and (ctx.cancel_event.is_set() or ctx.is_cancelled()):
                        stop = "cancelled"
                    break
                if ctx.cancel_event.is_set() or ctx.is_cancelled():
                    stop = "cancelled"
                elif time.monotonic() > deadline:
                    stop = "timed_out"
                if stop is not None:
                    status, rusage = self._kill(proc)
                    break
                time.sleep(self.config.poll_seconds)
        finally:
            proc.returncode = 0
            if not self.use_namespaces():
                # Without a PID namespace, children the task left behind are still in its
                # group (the group id stays reserved while any member lives).
                self._killpg(proc.pid, signal.SIGKILL)
            with self._lock:
                self._procs.pop(job.run_id, None)
            for t in pumps:
                t.join(2)
            for stream in (proc.stdout, proc.stderr):
                if stream:
                    stream.close()
        self._forward_events(events, offset, ctx)
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        result = self._read_result(out)
        if result is None and code is not None and code > 128:
            sig, code = code - 128, None  # the namespace's init reports a killed task as 128 + signal
        return TaskOutcome(
            result=result,
            exit_code=code,
            signal=sig,
            cpu_seconds=round(rusage.ru_utime + rusage.ru_stime, 3) if rusage else 0.0,
            max_rss_mb=round(rusage.ru_maxrss / 1024, 1) if rusage else 0.0,
            stdout=stdout.data(),
            stderr=stderr.data(),
            stdout_truncated=stdout.truncated,
            stderr_truncated=stderr.truncated,
            stopped=stop,
            stop_reason=timeout_reason if stop == "timed_out" else "the run was cancelled",
        )

    def _read_result(self, out: Path) -> dict[str, Any] | None:
        from executors.batch.staging import read_regular_file

        try:
            doc = json.loads(read_regular_file(out / "result.json", max_bytes=64 * 1024 * 1024))
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def _forward_events(self, events: Path, offset: int, ctx: ExecutionContext) -> int:
        """Hand the task's new progress/message lines to the context; returns the new offset."""
        try:
            with events.open("rb") as fh:
                fh.seek(offset)
                chunk = fh.read(1024 * 1024)
        except OSError:
            return offset
        end = chunk.rfind(b"\n")
        if end < 0:
            return offset
        for line in chunk[: end + 1].splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if not isinstance(doc, dict):
                continue
            if doc.get("type") == "progress" and isinstance(doc.get("percent"), int):
                msg = doc.get("message")
                ctx.progress(max(0, min(100, doc["percent"])), str(msg)[:500] if msg else None)
            elif doc.get("type") == "message":
                level = doc.get("level") if doc.get("level") in ("info", "warning", "error") else "info"
                ctx.message(str(level), str(doc.get("text", ""))[:2000])
        return offset + end + 1

    @staticmethod
    def _killpg(pgid: int, sig: int) -> None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _kill(self, proc: subprocess.Popen[bytes]) -> tuple[int, Any]:
        """SIGTERM the task's process group, SIGKILL it after the grace period; reap."""
        self._killpg(proc.pid, signal.SIGTERM)
        end = time.monotonic() + self.config.term_grace_seconds
        while time.monotonic() < end:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                return status, rusage
            time.sleep(0.05)
        self._killpg(proc.pid, signal.SIGKILL)
        _, status, rusage = os.wait4(proc.pid, 0)
        return status, rusage

    def cancel(self, run_id: str) -> None:
        """Stop a run's task now (the lease keeper's cancel callback, another thread)."""
        with self._lock:
            proc = self._procs.get(run_id)
        if proc is not None:
            self._killpg(proc.pid, signal.SIGTERM)


RunnerFactory = Callable[[], Runner]
