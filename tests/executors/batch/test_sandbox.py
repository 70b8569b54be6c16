"""The local runner's sandbox: no network, memory/CPU/process limits, wall clock, logs, user."""

from __future__ import annotations

import time

import pytest

from executors.base import DeadlineExceeded, ExecutorError

from .conftest import processes_of


def test_network_attempt_fails_the_run(batch, batch_tasks, recorder):
    batch_tasks("net", """
        import socket
        def run(inputs, ctx):
            socket.create_connection(("1.1.1.1", 80), timeout=3).close()
            return {"result": "connected"}
    """)
    with pytest.raises(ExecutorError) as info:
        batch.execute("net", {}, recorder.ctx("net"))
    assert info.value.code == "network-refused"
    assert "network access is disabled" in info.value.message and "1.1.1.1" in info.value.message
    assert any("network" in text for _, text in recorder.messages)  # which guard is active


def test_task_has_no_network_interface_but_loopback_and_runs_unprivileged(batch, batch_tasks, recorder):
    batch_tasks("whoami", """
        import os, socket
        def run(inputs, ctx):
            return {"ifaces": [n for _, n in socket.if_nameindex()], "uid": os.getuid(), "cwd": os.getcwd(),
                    "tmp": os.environ["TMPDIR"], "pid": os.getpid()}
    """)
    out = batch.execute("whoami", {}, recorder.ctx("whoami", run_id="whoami-1"))
    assert out["ifaces"] == ["lo"]
    assert out["uid"] == 65534  # nobody: RLIMIT_NPROC binds
    assert out["cwd"] == out["tmp"] and out["cwd"].endswith("/whoami-1/tmp")
    assert out["pid"] == 2  # own PID namespace: PID 1 is the reaper


def test_memory_hog_fails_with_the_limit_named(batch, batch_tasks, recorder):
    batch_tasks("hog", """
        def run(inputs, ctx):
            blocks = [bytearray(100 * 1024 * 1024) for _ in range(40)]
            return {"result": len(blocks)}
    """, memory_mb=600)
    with pytest.raises(ExecutorError) as info:
        batch.execute("hog", {}, recorder.ctx("hog"))
    assert info.value.code == "memory-limit-exceeded" and "600 MB" in info.value.message


def test_cpu_burner_hits_cpu_seconds(batch, batch_tasks, recorder):
    batch_tasks("burn", """
        def run(inputs, ctx):
            x = 0
            while True:
                x += 1
    """, cpu_seconds=2)
    started = time.monotonic()
    with pytest.raises(ExecutorError) as info:
        batch.execute("burn", {}, recorder.ctx("burn"))
    assert info.value.code == "cpu-limit-exceeded" and "CPU limit of 2 s" in info.value.message
    assert time.monotonic() - started < 15


def test_fork_bomb_is_bounded_by_processes(batch, batch_tasks, recorder):
    batch_tasks("forks", """
        import os, time
        def run(inputs, ctx):
            children = 0
            try:
                while True:
                    if os.fork() == 0:
                        time.sleep(60)
                        os._exit(0)
                    children += 1
                    if children > 50:
                        return {"result": children}
            finally:
                ctx.message("info", f"forked {children}")
    """, processes=5)
    run_ctx = recorder.ctx("forks")
    with pytest.raises(ExecutorError) as info:
        batch.execute("forks", {}, run_ctx)
    assert info.value.code == "process-limit-exceeded" and "5 processes" in info.value.message
    forked = [int(t.split()[-1]) for _, t in recorder.messages if t.startswith("forked ")]
    assert forked and forked[0] <= 4  # the task itself is the fifth
    time.sleep(0.2)
    assert processes_of(run_ctx.run_id) == []  # its sleeping children died with it


def test_sleeping_task_times_out_and_its_process_group_is_gone(batch, batch_tasks, recorder):
    batch_tasks("sleepy", """
        import os, time
        def run(inputs, ctx):
            if os.fork() == 0:
                os.setsid()  # a child that leaves the process group still dies
                time.sleep(120)
                os._exit(0)
            print("sleeping", flush=True)
            time.sleep(120)
            return {}
    """, wall_seconds=2)
    run_ctx = recorder.ctx("sleepy")
    started = time.monotonic()
    seen: list[int] = []

    import threading

    def watch() -> None:
        while time.monotonic() - started < 1.8:
            seen.extend(processes_of(run_ctx.run_id))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    with pytest.raises(DeadlineExceeded) as info:
        batch.execute("sleepy", {}, run_ctx)
    watcher.join()
    assert "wall-clock limit of 2 s" in info.value.message
    assert time.monotonic() - started < 8
    assert len(set(seen)) >= 3  # unshare, the reaper, the task (and its child) were running
    time.sleep(0.2)
    assert processes_of(run_ctx.run_id) == []
    assert b"sleeping" in recorder.files["stdout.txt"][0]  # logs kept even when stopped


def test_stdout_and_stderr_are_attached_and_truncated(batch, batch_tasks, recorder, settings):
    settings.HONUA = {**settings.HONUA, "BATCH": {**settings.HONUA["BATCH"], "MAX_LOG_BYTES": 2000}}
    from executors.batch.executor import BatchExecutor

    batch = BatchExecutor()
    batch_tasks("noisy", """
        import sys
        def run(inputs, ctx):
            print("FIRST-LINE")
            for i in range(20000):
                print(f"line {i}")
            print("LAST-LINE", flush=True)
            sys.stderr.write("oops on stderr\\n")
            return {"result": 1}
    """)
    assert batch.execute("noisy", {}, recorder.ctx("noisy")) == {"result": 1}
    data, media = recorder.files["stdout.txt"]
    assert media.startswith("text/plain")
    assert len(data) < 2100
    assert data.startswith(b"FIRST-LINE") and data.rstrip().endswith(b"LAST-LINE")
    assert b"bytes truncated ..." in data
    assert recorder.files["stderr.txt"][0] == b"oops on stderr\n"
    assert any("truncated" in text for level, text in recorder.messages if level == "warning")


def test_crash_fails_with_the_stderr_tail(batch, batch_tasks, recorder):
    batch_tasks("crash", """
        import os, sys
        def run(inputs, ctx):
            sys.stderr.write("about to die\\n"); sys.stderr.flush()
            os.kill(os.getpid(), 11)
    """)
    with pytest.raises(ExecutorError) as info:
        batch.execute("crash", {}, recorder.ctx("crash"))
    assert info.value.code == "task-crashed" and "SIGSEGV" in info.value.message
    assert "about to die" in info.value.message
