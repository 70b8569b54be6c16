"""System checks: an invalid catalog fails ``manage.py check`` (and the tests)."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, register


@register("honua")
def catalog_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    from controlplane.services.catalog import load_catalog
    from controlplane.services.gpservices import load_gpservices

    docs, problems = load_catalog()
    errors = [Error(str(p), id="honua.E001", hint="Fix the YAML in controlplane/catalog/.") for p in problems]
    _, service_problems = load_gpservices(process_ids=set(docs))
    errors.extend(
        Error(str(p), id="honua.E002", hint="Fix the YAML in controlplane/catalog/gpservices/.")
        for p in service_problems
    )
    return errors


@register("honua")
def batch_tasks_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Every batch handler of the catalog names a batch task that exists (signatures are
    checked per run: a missing one fails that run, not the server's start)."""
    from controlplane.services.catalog import load_catalog
    from executors.batch.executor import task_dirs
    from executors.batch.manifest import task_dir

    docs, _ = load_catalog()
    errors = []
    for pid, doc in docs.items():
        handler = (doc.get("handlers") or {}).get("batch")
        if handler and task_dir(handler, task_dirs()) is None:
            errors.append(
                Error(f"process {pid!r}: batch handler {handler!r} is not a batch task", id="honua.E008",
                      hint="Add executors/batch/tasks/<handler>/ or fix the YAML.")
            )
    return errors


@register("honua")
def artifact_store_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """The artifact store settings name a store, and the S3 store has what it needs."""
    from django.conf import settings

    honua = settings.HONUA
    store = honua.get("ARTIFACT_STORE", "local")
    if store not in ("local", "s3"):
        return [Error(f"HONUA_ARTIFACT_STORE is {store!r}", id="honua.E003", hint="Set it to local or s3.")]
    errors = []
    if store == "s3" and not honua.get("S3_BUCKET"):
        errors.append(Error("the S3 artifact store needs a bucket", id="honua.E004", hint="Set HONUA_S3_BUCKET."))
    sse = str(honua.get("S3_SSE") or "none")
    if sse not in ("AES256", "aws:kms", "none"):
        errors.append(Error(f"HONUA_S3_SSE is {sse!r}", id="honua.E005", hint="Set it to AES256, aws:kms or none."))
    if int(honua.get("S3_RETENTION_DAYS", 1)) < 1:
        errors.append(Error("HONUA_S3_RETENTION_DAYS must be at least 1", id="honua.E006"))
    if not 0 <= int(honua.get("S3_PRESIGN_SECONDS", 0)) <= 7 * 24 * 3600:
        errors.append(
            Error("HONUA_S3_PRESIGN_SECONDS must be 0 to 604800", id="honua.E007", hint="S3 SigV4 caps presigned URLs at 7 days.")
        )
    return errors


@register("honua")
def batch_runner_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """The batch runner is one Honua has, and the AWS Batch runner has what it needs."""
    from django.conf import settings

    conf = settings.HONUA.get("BATCH", {})
    runner = conf.get("RUNNER", "local")
    if runner not in ("local", "aws"):
        return [Error(f"HONUA_BATCH_RUNNER is {runner!r}", id="honua.E009", hint="Set it to local or aws.")]
    if runner != "aws":
        return []
    errors = [
        Error(f"the AWS Batch runner needs HONUA_BATCH_{key}", id="honua.E010")
        for key in ("JOB_QUEUE", "JOB_DEFINITION", "INPUT_BUCKET")
        if not conf.get(key)
    ]
    if int(conf.get("TIMEOUT_SECONDS", 3600)) < 60:
        errors.append(Error("HONUA_BATCH_TIMEOUT_SECONDS must be at least 60 (AWS Batch's minimum)", id="honua.E011"))
    if not 1 <= int(conf.get("RETRY_ATTEMPTS", 3)) <= 10:
        errors.append(Error("HONUA_BATCH_RETRY_ATTEMPTS must be 1 to 10 (AWS Batch's range)", id="honua.E012"))
    if int(conf.get("S3_RETENTION_DAYS", 7)) < 1:
        errors.append(Error("HONUA_BATCH_S3_RETENTION_DAYS must be at least 1", id="honua.E013"))
    return errors
