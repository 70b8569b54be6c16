"""The sandbox launcher: ``python -m executors.batch.sandbox [options] -- <command...>``.

Started by the local runner as root inside fresh namespaces (``unshare --net --mount --pid``)
or, where namespaces are unavailable, directly. It makes what the task needs reachable for
the unprivileged user, sets the resource limits, drops to that user and execs the command.
No Django here.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import signal
import stat
import sys
import tempfile
from pathlib import Path

MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.mount(
        source.encode(), target.encode(), fstype.encode() if fstype else None, flags, data.encode() if data else None
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} -> {target}: {os.strerror(err)}")


def _traversable(path: Path, uid: int, gid: int) -> bool:
    st = path.stat()
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _hold_base() -> Path:
    """Where bind mounts wait while their directory is covered: outside every directory that
    may be covered (the checkout itself may live under /root), on a world-traversable tmpfs."""
    for parent in ("/dev/shm", "/tmp"):
        if os.path.isdir(parent) and os.access(parent, os.W_OK):
            return Path(tempfile.mkdtemp(prefix="honua-hold-", dir=parent))
    raise OSError("no writable /dev/shm or /tmp for the sandbox's mounts")


def expose(needed: list[Path], uid: int, gid: int) -> list[str]:
    """In a private mount namespace: for each directory the task user cannot traverse on the
    way to a needed path (a Python or a checkout under /root), cover that directory with an
    empty tmpfs that holds only the needed children (bind-mounted back). Returns what was
    done."""
    keep: dict[Path, set[str]] = {}
    for target in needed:
        if not target.exists():
            continue
        target = target.resolve()
        ancestors = [*reversed(target.parents), target]
        for i, ancestor in enumerate(ancestors[:-1]):
            if not _traversable(ancestor, uid, gid):
                keep.setdefault(ancestor, set()).add(ancestors[i + 1].name)
                break
    if not keep:
        return []
    done: list[str] = []
    hold = _hold_base()
    try:
        for ancestor in sorted(keep, key=lambda p: len(p.parts)):
            slots: dict[str, Path] = {}
            for name in sorted(keep[ancestor]):
                slot = hold / f"{len(done)}-{len(slots)}"
                slot.mkdir()
                _mount(str(ancestor / name), str(slot), None, MS_BIND | MS_REC, None)
                slots[name] = slot
            _mount("tmpfs", str(ancestor), "tmpfs", 0, "mode=0755,size=1m")
            for name, slot in slots.items():
                (ancestor / name).mkdir()
                _mount(str(slot), str(ancestor / name), None, MS_MOVE, None)
            done.append(f"{ancestor} covered, {', '.join(sorted(slots))} kept")
    finally:
        for slot in hold.iterdir():
            slot.rmdir()
        hold.rmdir()
    return done


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="executors.batch.sandbox")
    parser.add_argument("--uid", type=int, default=-1)
    parser.add_argument("--gid", type=int, default=-1)
    parser.add_argument("--cpu", type=int, required=True)
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--processes", type=int, required=True)
    parser.add_argument("--private-mounts", action="store_true")
    parser.add_argument("--hold", default="")
    parser.add_argument("--init", action="store_true")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args(argv)
    if args.private_mounts and args.uid > 0 and args.hold:
        needed = [Path(sys.base_prefix), Path(sys.prefix), Path(os.path.realpath(sys.executable)).parent]
        needed.extend(Path(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)
        needed.append(Path(args.hold).parent)  # the run's staging directory
        expose(needed, args.uid, args.gid)
    if args.init:
        # PID 1 of the task's PID namespace stays root and does nothing but reap: when it
        # exits, the kernel kills every process left in the namespace (forks, setsid escapes).
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = os.fork()
        if child == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _limit_and_exec(args)
        while True:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                return 1
            if pid == child:
                return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    _limit_and_exec(args)
    return 127  # not reached


def _limit_and_exec(args: argparse.Namespace) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # SIGXCPU at the soft limit (the task may report it), SIGKILL a second later.
    resource.setrlimit(resource.RLIMIT_CPU, (args.cpu, args.cpu + 1))
    memory = args.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    if args.uid > 0:
        # RLIMIT_NPROC counts the real uid's processes, and never binds root: drop first.
        os.setgroups([])
        os.setresgid(args.gid, args.gid, args.gid)
        resource.setrlimit(resource.RLIMIT_NPROC, (args.processes, args.processes))
        os.setresuid(args.uid, args.uid, args.uid)
    else:
        resource.setrlimit(resource.RLIMIT_NPROC, (args.processes, args.processes))
    try:
        os.execv(args.command[0], args.command)
    finally:
        os._exit(127)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
