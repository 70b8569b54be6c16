"""The batch tier: signed Python tasks run in isolation by a runner (local subprocess now;
AWS Batch next). Executors stay ignorant of artifacts: logs go out through ``ctx.attach``."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import signal
import threading
from pathlib import Path
from typing import Any, ClassVar

from botocore.exceptions import ClientError
from django.conf import settings

from executors.base import (
    Cancelled,
    DeadlineExceeded,
    Detached,
    ExecutionContext,
    Executor,
    ExecutorError,
    InvalidInput,
    TierUnavailable,
)
from executors.batch.aws import TERMINAL, AwsRunner, AwsRunnerConfig
from executors.batch.local import BatchJob, LocalRunner, LocalRunnerConfig, Runner, TaskOutcome
from executors.batch.manifest import (
    BUILTIN_TASKS_DIR,
    Manifest,
    ManifestRefused,
    SignatureFile,
    manifest_verify,
    task_dir,
)
from executors.batch.staging import local_path, read_regular_file

log = logging.getLogger("honua.executors.batch")

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
STDERR_TAIL = 1500


def batch_settings() -> dict[str, Any]:
    return dict(settings.HONUA.get("BATCH", {}))


def signing_key() -> bytes:
    return str(batch_settings()["SIGNING_KEY"]).encode()


def task_dirs() -> list[Path]:
    return [BUILTIN_TASKS_DIR, *(Path(p) for p in batch_settings().get("TASK_DIRS", []))]


def signature_file() -> SignatureFile:
    return SignatureFile(Path(batch_settings()["SIGNATURES"]))


def runner_from_settings() -> Runner:
    conf = batch_settings()
    kind = conf.get("RUNNER", "local")
    if kind == "aws":
        return AwsRunner(AwsRunnerConfig.from_settings(conf))
    if kind != "local":
        raise TierUnavailable(f"the batch runner {kind!r} is not installed on this server")
    return LocalRunner(
        LocalRunnerConfig(
            root=Path(conf["DIR"]),
            python=conf["PYTHON"],
            max_log_bytes=int(conf["MAX_LOG_BYTES"]),
            user=str(conf.get("USER", "nobody")),
            namespaces=str(conf.get("NAMESPACES", "auto")),
        )
    )


class BatchExecutor(Executor):
    """Runs a signed task (handler = task name) through the configured runner."""

    tier: ClassVar[str] = "batch"
    needs_database: ClassVar[bool] = False
    isolated: ClassVar[bool] = True
    supports_cancel: ClassVar[bool] = True

    def __init__(self, runner: Runner | None = None) -> None:
        self._runner = runner
        self._lock = threading.Lock()

    @property
    def runner(self) -> Runner:
        with self._lock:
            if self._runner is None:
                self._runner = runner_from_settings()
            return self._runner

    def supports(self, handler: str) -> bool:
        return task_dir(handler, task_dirs()) is not None

    def cancel_callback(self, ctx: ExecutionContext) -> None:
        ctx.cancel_event.set()
        self.runner.cancel(ctx.run_id)

    def execute(self, handler: str, inputs: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
        if not RUN_ID_RE.match(ctx.run_id):
            raise ExecutorError(f"invalid run id for a batch job: {ctx.run_id!r}", code="invalid-run-id")
        try:
            manifest = manifest_verify(handler, dirs=task_dirs(), key=signing_key(), signatures=signature_file())
        except ManifestRefused as exc:
            raise ExecutorError(f"refused before running: {exc.message}", code=exc.code) from exc
        ctx.check_cancelled()
        runner = self.runner
        if isinstance(runner, AwsRunner):
            self._submit(manifest, inputs, ctx, runner)
        staging = runner.staging
        try:
            job = self._stage(manifest, inputs, ctx, runner)
            q = manifest.quota
            ctx.message(
                "info",
                f"batch task {manifest.name} {manifest.version}: {runner.describe()}; limits: "
                f"{q.cpu_seconds} CPU s, {q.memory_mb} MB, {q.wall_seconds} s wall, {q.processes} processes",
            )
            outcome = runner.run(job, ctx)
            self._attach_logs(outcome, ctx)
            if outcome.stopped == "cancelled":
                raise Cancelled(f"{outcome.stop_reason}; the task's processes were killed")
            if outcome.stopped == "timed_out":
                raise DeadlineExceeded(f"{outcome.stop_reason}; the task's processes were killed")
            return self._outputs(manifest, outcome, ctx, runner)
        finally:
            staging.delete(ctx.run_id)

    # --- remote runners (AWS Batch): submit and detach; resume from the job's end ---------------

    def _submit(self, manifest: Manifest, inputs: dict[str, Any], ctx: ExecutionContext, runner: AwsRunner) -> None:
        """Stage to S3, SubmitJob and raise Detached: the run is finished by ``resume``."""
        staging = runner.staging
        submitted = False
        try:
            job = self._stage(manifest, inputs, ctx, runner)
            ctx.check_cancelled()
            external = runner.submit(job, ctx)
            submitted = True
        except ClientError as exc:
            raise ExecutorError(f"AWS refused the batch job: {exc}", code="batch-submit-failed") from exc
        finally:
            if not submitted:
                staging.delete(ctx.run_id)
        ctx.message("info", f"batch task {manifest.name} {manifest.version} submitted to {runner.describe()} "
                            f"as job {external['job_id']}")
        raise Detached(f"AWS Batch job {external['job_id']}", external=external)

    def aws_runner(self) -> AwsRunner:
        """The runner of detached jobs (the configured one, or one from the AWS settings)."""
        runner = self.runner
        if isinstance(runner, AwsRunner):
            return runner
        return AwsRunner(AwsRunnerConfig.from_settings(batch_settings()))

    def remote_cancel(self, external: dict[str, Any], reason: str) -> None:
        """Stop a detached job (TerminateJob); its end arrives as an event or a poll."""
        self.aws_runner().terminate(str(external["job_id"]), reason)

    def remote_cleanup(self, external: dict[str, Any], run_id: str) -> None:
        """Remove a finished job's staged inputs and outputs (once its run is recorded)."""
        self.aws_runner().cleanup(run_id)

    def remote_describe(self, externals: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """job id -> the job's description (DescribeJobs), for the jobs that still exist."""
        return self.aws_runner().describe_jobs(str(e["job_id"]) for e in externals)

    def resume(self, external: dict[str, Any], job: dict[str, Any], ctx: ExecutionContext) -> dict[str, Any]:
        """Finish a detached run from its job's final description (an event's ``detail`` or
        DescribeJobs): the outputs, or the error with the job's log tail (attached)."""
        status = str(job.get("status") or "")
        if status not in TERMINAL:
            raise ExecutorError(f"AWS Batch job {external['job_id']} is {status or 'unknown'}, not finished",
                                code="batch-job-unfinished")
        runner = self.aws_runner()
        result = runner.read_result(external)
        if status == "SUCCEEDED" and result is not None and result.get("status") == "succeeded":
            outputs = result.get("outputs")
            if not isinstance(outputs, dict):
                raise ExecutorError(f"batch task {external.get('task')} returned no outputs", code="task-protocol-error")
            try:
                read = self._read_back_remote(outputs, runner, external)
            except (ValueError, KeyError) as exc:
                raise ExecutorError(str(exc), code="task-protocol-error") from exc
            ctx.message("info", f"AWS Batch job {external['job_id']} succeeded in {result.get('seconds', '?')} s")
            return read
        reason = str(job.get("statusReason") or "")
        if ctx.is_cancelled():
            raise Cancelled(f"AWS Batch job {external['job_id']} was terminated ({reason or status})")
        if "exceeded timeout" in reason.lower() or "attempt duration" in reason.lower():
            raise DeadlineExceeded(f"AWS Batch job {external['job_id']} timed out: {reason}")
        tail = self._remote_log_tail(job, runner, ctx)
        error = (result or {}).get("error") or {}
        code = str(error.get("code") or "")
        if code == "invalid-input":
            raise InvalidInput(f"{external.get('task')}: {error.get('message') or code}")
        if code:
            message = f"batch task {external.get('task')} failed: {error.get('message') or code}"
        elif status == "SUCCEEDED":
            code, message = "task-protocol-error", f"AWS Batch job {external['job_id']} wrote no result"
        else:
            code = "batch-job-failed"
            message = f"AWS Batch job {external['job_id']} failed: {reason or 'no reason given'}"
        if tail:
            message += "; log tail: ..." + "\n".join(tail)[-STDERR_TAIL:]
        raise ExecutorError(message, code=code)

    @staticmethod
    def _remote_log_tail(job: dict[str, Any], runner: AwsRunner, ctx: ExecutionContext) -> list[str]:
        stream = str((job.get("container") or {}).get("logStreamName") or "")
        for attempt in reversed(job.get("attempts") or []):
            stream = stream or str((attempt.get("container") or {}).get("logStreamName") or "")
        if not stream:
            return []
        try:
            lines = runner.log_tail(stream)
        except ClientError as exc:
            ctx.message("warning", f"the job's log stream {stream} could not be read: {exc}")
            return []
        if lines:
            ctx.attach("aws-batch-log.txt", ("\n".join(lines) + "\n").encode(), "text/plain; charset=utf-8")
        return lines

    def _read_back_remote(self, value: Any, runner: AwsRunner, external: dict[str, Any]) -> Any:
        if isinstance(value, dict) and set(value) == {"href", "media_type", "name"}:
            data = runner.read_output(external, str(value["href"]))
            return {
                "value": base64.b64encode(data).decode(),
                "media_type": value["media_type"],
                "encoding": "base64",
                "name": Path(str(value["name"])).name,
            }
        if isinstance(value, dict):
            return {k: self._read_back_remote(v, runner, external) for k, v in value.items()}
        if isinstance(value, list):
            return [self._read_back_remote(v, runner, external) for v in value]
        return value

    # --- staging ---------------------------------------------------------------------------

    def _stage(self, manifest: Manifest, inputs: dict[str, Any], ctx: ExecutionContext, runner: Runner) -> BatchJob:
        staging = runner.staging
        counter = [0]

        def stage(value: Any) -> Any:
            if isinstance(value, dict):
                if value.get("encoding") == "base64" and isinstance(value.get("value"), str):
                    counter[0] += 1
                    name = Path(str(value.get("name") or f"input{counter[0]}")).name or f"input{counter[0]}"
                    key = f"{ctx.run_id}/inputs/{counter[0]}-{name}"
                    href = staging.put(key, base64.b64decode(value["value"]))
                    return {"href": href, "staged": True, "media_type": value.get("media_type"), "name": name}
                return {k: stage(v) for k, v in value.items()}
            if isinstance(value, list):
                return [stage(v) for v in value]
            return value

        script: dict[str, Any] = {"path": str(manifest.script), "sha256": manifest.sha256}
        if isinstance(runner, AwsRunner):
            # The container carries the environment; the run carries the verified script
            # (the entry point checks its sha256 again before running it).
            script = {
                "uri": staging.put(f"{ctx.run_id}/task.py", Path(manifest.script).read_bytes()),
                "sha256": manifest.sha256,
                "name": manifest.name,
            }
        doc = {
            "task": manifest.name,
            "version": manifest.version,
            "run_id": ctx.run_id,
            "entry": manifest.entry,
            "script": script,
            "modules": list(manifest.modules),
            "env": list(manifest.env),
            "quota": manifest.quota.to_json(),
            "inputs": stage(inputs),
            # What a catalog process's tiers share besides its inputs (the in-process tier
            # reads them from the ExecutionContext): limits such as max_cells and the CRSs.
            "context": {
                "limits": {k: v for k, v in ctx.limits.items() if isinstance(v, int | float | str | bool)},
                "out_srid": ctx.out_srid,
                "process_srid": ctx.process_srid,
            },
        }
        uri = staging.put(f"{ctx.run_id}/inputs.json", json.dumps(doc).encode())
        env = {k: os.environ[k] for k in manifest.env if k in os.environ}
        return BatchJob(
            run_id=ctx.run_id, manifest=manifest, inputs_uri=uri, output_prefix=runner.output_prefix(ctx.run_id),
            env=env,
        )

    # --- results ---------------------------------------------------------------------------

    def _attach_logs(self, outcome: TaskOutcome, ctx: ExecutionContext) -> None:
        for name, data in (("stdout", outcome.stdout), ("stderr", outcome.stderr)):
            if data:
                ctx.attach(f"{name}.txt", data, "text/plain; charset=utf-8")
        if outcome.stdout_truncated or outcome.stderr_truncated:
            ctx.message("warning", "the task's output was truncated to HONUA_BATCH_MAX_LOG_BYTES")

    def _outputs(
        self, manifest: Manifest, outcome: TaskOutcome, ctx: ExecutionContext, runner: Runner
    ) -> dict[str, Any]:
        stderr_tail = outcome.stderr.decode(errors="replace")[-STDERR_TAIL:].strip()
        tail = f"; stderr: ...{stderr_tail}" if stderr_tail else ""
        q = manifest.quota
        result = outcome.result
        if result is None or result.get("status") != "succeeded":
            error = (result or {}).get("error") or {}
            code = str(error.get("code") or "")
            if not code:
                code, message = self._how_it_died(outcome, manifest)
            else:
                message = str(error.get("message") or code)
            if code == "invalid-input":
                raise InvalidInput(f"{manifest.name}: {message}")
            if code == "environment-missing":
                raise TierUnavailable(f"{manifest.name}: {message}")
            raise ExecutorError(f"batch task {manifest.name} failed: {message}{tail}", code=code)
        ctx.message(
            "info",
            f"batch task {manifest.name} finished: {outcome.cpu_seconds:g} CPU s of {q.cpu_seconds}, "
            f"max RSS {outcome.max_rss_mb:g} MB",
        )
        outputs = result.get("outputs")
        if not isinstance(outputs, dict):
            raise ExecutorError(f"batch task {manifest.name} returned no outputs", code="task-protocol-error")
        out_dir = local_path(runner.output_prefix(ctx.run_id)) if isinstance(runner, LocalRunner) else None
        return {k: self._read_back(v, out_dir) for k, v in outputs.items()}

    def _read_back(self, value: Any, out_dir: Path | None) -> Any:
        """File outputs ({"href", "media_type", "name"}) come back as inline bytes (base64)."""
        if isinstance(value, dict) and set(value) == {"href", "media_type", "name"} and out_dir is not None:
            name = Path(str(value["name"])).name
            if local_path(str(value["href"])) != out_dir / name:
                raise ExecutorError("a task output points outside its output prefix", code="task-protocol-error")
            try:
                data = read_regular_file(out_dir / name)
            except OSError as exc:
                raise ExecutorError(f"task output {name} unreadable: {exc}", code="task-protocol-error") from exc
            return {
                "value": base64.b64encode(data).decode(),
                "media_type": value["media_type"],
                "encoding": "base64",
                "name": name,
            }
        if isinstance(value, dict):
            return {k: self._read_back(v, out_dir) for k, v in value.items()}
        if isinstance(value, list):
            return [self._read_back(v, out_dir) for v in value]
        return value

    @staticmethod
    def _how_it_died(outcome: TaskOutcome, manifest: Manifest) -> tuple[str, str]:
        q = manifest.quota
        sig = outcome.signal
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and outcome.cpu_seconds >= q.cpu_seconds - 0.5):
            return "cpu-limit-exceeded", (
                f"the task exceeded its CPU limit of {q.cpu_seconds} s (used {outcome.cpu_seconds:g} s) and was killed"
            )
        if sig == signal.SIGKILL:
            return "task-killed", (
                f"the task was killed (SIGKILL), most likely out of memory (quota {q.memory_mb} MB, "
                f"max RSS {outcome.max_rss_mb:g} MB)"
            )
        if sig is not None:
            return "task-crashed", f"the task crashed with signal {signal.Signals(sig).name}"
        return "task-crashed", f"the task exited with status {outcome.exit_code} and no result"
