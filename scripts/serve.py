"""`make run`: serve Honua with gunicorn plus one django-q2 `qcluster`, and stop both together.

Run with the project's virtualenv python (the Makefile does). Environment:
  HONUA_HOST (127.0.0.1), HONUA_PORT (8000)   where gunicorn binds
  HONUA_WEB_WORKERS (2), HONUA_WEB_THREADS (4) gunicorn gthread workers x threads
  HONUA_RUN_QCLUSTER (1)                       0: web only (workers run on other hosts)
  HONUA_STOP_TIMEOUT (30)                      seconds to wait for a graceful stop
  PROMETHEUS_MULTIPROC_DIR ($HONUA_DATA_DIR/prometheus)
                                               metric files of every web and worker process,
                                               merged by /metrics; emptied at start
  GUNICORN_CMD_ARGS                            extra gunicorn options (read by gunicorn)

SIGINT/SIGTERM/SIGHUP: every child gets SIGTERM, and after HONUA_STOP_TIMEOUT seconds (or
on a second Ctrl-C) its whole process group gets SIGKILL. Children run in process groups
of their own and get SIGTERM from the kernel if this process dies, so none is orphaned.
If a child exits by itself, the other is stopped too and this exits non-zero.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PR_SET_PDEATHSIG = 1


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        sys.exit(f"[honua] {name} must be an integer, got {raw!r}")


def say(msg: str) -> None:
    print(f"[honua] {msg}", flush=True)


def _child_setup() -> None:
    # Runs in the child between fork and exec: die with the parent.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class Child:
    def __init__(self, name: str, argv: list[str]):
        self.name = name
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: we decide how it is stopped
            preexec_fn=_child_setup,
        )
        self.pgid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def group_alive(self) -> bool:
        try:
            os.killpg(self.pgid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def terminate(self) -> None:
        if self.alive():
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass


class Supervisor:
    def __init__(self) -> None:
        self.children: list[Child] = []
        self.stop_requests = 0

    def on_signal(self, signum: int, _frame: object) -> None:
        self.stop_requests += 1
        if self.stop_requests == 1:
            say(f"{signal.Signals(signum).name}: stopping (again to force)")
        else:
            say("forcing stop")

    def stop_all(self, timeout: float) -> None:
        for c in self.children:
            c.terminate()
        deadline = time.monotonic() + timeout
        forced_at = self.stop_requests
        while any(c.alive() for c in self.children):
            if time.monotonic() > deadline or self.stop_requests > max(forced_at, 1):
                for c in self.children:
                    if c.alive():
                        say(f"{c.name} did not stop in time: killing it")
                        c.signal_group(signal.SIGKILL)
                break
            time.sleep(0.1)
        for c in self.children:
            try:
                c.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                c.signal_group(signal.SIGKILL)
                c.proc.wait()
        # Anything left in a child's process group after its leader exited is an orphan.
        for c in self.children:
            if c.group_alive():
                c.signal_group(signal.SIGTERM)
                end = time.monotonic() + 3
                while c.group_alive() and time.monotonic() < end:
                    time.sleep(0.1)
                c.signal_group(signal.SIGKILL)


def gunicorn_has_option(flag: str) -> bool:
    try:
        from gunicorn.config import KNOWN_SETTINGS
    except ImportError:
        return False
    return any(flag in (getattr(s, "cli", None) or []) for s in KNOWN_SETTINGS)


def prometheus_dir() -> Path:
    """The multiprocess metrics directory, emptied of a previous run's samples.

    Only the metric files are removed (``*.db``), in case the variable names a directory
    that holds anything else.
    """
    default = Path(os.environ.get("HONUA_DATA_DIR", "").strip() or ROOT / ".data") / "prometheus"
    path = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip() or default)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
    return path


def wait_for_port(host: str, port: int, sup: Supervisor, web: Child, timeout: float = 90) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end and not sup.stop_requests and web.alive():
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def main() -> int:
    host = os.environ.get("HONUA_HOST", "").strip() or "127.0.0.1"
    port = env_int("HONUA_PORT", 8000)
    workers = env_int("HONUA_WEB_WORKERS", 2)
    threads = env_int("HONUA_WEB_THREADS", 4)
    stop_timeout = env_int("HONUA_STOP_TIMEOUT", 30)
    run_qcluster = os.environ.get("HONUA_RUN_QCLUSTER", "1").strip().lower() not in (
        "0",
        "false",
        "no",
    )

    bare = host.strip("[]")
    bind_host = f"[{bare}]" if ":" in bare else bare
    probe_host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(bare, bare)
    url_host = f"[{probe_host}]" if ":" in probe_host else probe_host
    base = f"http://{url_host}:{port}"

    # Set before any child starts: prometheus-client picks its mode when first imported.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prometheus_dir())

    sup = Supervisor()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, sup.on_signal)

    py = sys.executable
    gunicorn = [
        py, "-m", "gunicorn", "honua.wsgi:application",
        "--config", str(ROOT / "scripts" / "gunicorn_conf.py"),
        "--bind", f"{bind_host}:{port}",
        "--workers", str(workers),
        "--worker-class", "gthread",
        "--threads", str(threads),
        "--graceful-timeout", str(max(stop_timeout - 5, 1)),
        "--access-logfile", "-",
    ]  # fmt: skip
    if gunicorn_has_option("--no-control-socket"):
        # gunicorn >= 24 opens ~/.gunicorn/gunicorn.ctl by default: one per user, so two
        # servers (make run + make bench, two checkouts) would fight over it.
        gunicorn.append("--no-control-socket")
    say(f"gunicorn: {workers} workers x {threads} threads on {bind_host}:{port}")
    web = Child("gunicorn", gunicorn)
    sup.children.append(web)
    if run_qcluster:
        say("qcluster: django-q2 worker cluster (HONUA_Q_WORKERS workers)")
        sup.children.append(Child("qcluster", [py, "manage.py", "qcluster"]))

    if wait_for_port(probe_host, port, sup, web):
        print(
            "\n"
            f"  Honua is running:\n"
            f"    OGC API - Processes  {base}/ogcapi/\n"
            f"    GPServer (ArcGIS)    {base}/arcgis/rest/services\n"
            f"    Job browser          {base}/app/\n"
            f"    Admin                {base}/admin/\n"
            f"    Health, metrics      {base}/healthz  {base}/readyz  {base}/metrics\n"
            f"  Ctrl-C stops the server and the worker; PostgreSQL keeps running "
            f"('make stop-db' stops it).\n",
            flush=True,
        )

    exit_code = 0
    while not sup.stop_requests:
        dead = [c for c in sup.children if not c.alive()]
        if dead:
            for c in dead:
                say(f"{c.name} exited with code {c.proc.returncode}: stopping the rest")
            exit_code = 1
            break
        time.sleep(0.2)

    sup.stop_all(stop_timeout)
    say("stopped")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
