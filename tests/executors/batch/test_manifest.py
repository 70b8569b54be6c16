"""Manifests: unknown, unsigned, altered or badly signed tasks are refused before anything runs."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from executors.base import ExecutorError, TierUnavailable
from executors.batch.executor import signature_file, signing_key, task_dirs
from executors.batch.manifest import canonical_json, manifest_load

from .conftest import processes_of

OK = """
def run(inputs, ctx):
    return {"result": inputs["x"] * 2}
"""


def _refused(batch, recorder, name: str) -> ExecutorError:
    ctx = recorder.ctx(name)
    with pytest.raises(ExecutorError) as info:
        batch.execute(name, {"x": 1}, ctx)
    assert not isinstance(info.value, TierUnavailable)  # no silent fallback to another tier
    assert not batch.runner.staging.path(ctx.run_id).exists()  # nothing was staged or started
    assert not processes_of(ctx.run_id)
    assert recorder.messages == []
    return info.value


def test_a_signed_task_runs(batch, batch_tasks, recorder):
    batch_tasks("double", OK)
    assert batch.execute("double", {"x": 21}, recorder.ctx("double")) == {"result": 42}


def test_unknown_task_is_refused(batch, batch_tasks, recorder):
    err = _refused(batch, recorder, "no_such_task")
    assert err.code == "unknown-task" and "unknown batch task" in err.message
    assert _refused(batch, recorder, "../etc").code == "unknown-task"


def test_unsigned_task_is_refused(batch, batch_tasks, recorder):
    batch_tasks("unsigned", OK, sign=False)
    err = _refused(batch, recorder, "unsigned")
    assert err.code == "unsigned-task" and "batch_sign" in err.message


def test_altered_script_is_refused(batch, batch_tasks, recorder):
    where = batch_tasks("altered", OK)
    with (where / "task.py").open("a") as fh:
        fh.write("\nimport os; os.system('touch /tmp/pwned')\n")
    err = _refused(batch, recorder, "altered")
    assert err.code == "script-altered" and "altered" in err.message


def test_manifest_changed_after_signing_is_refused(batch, batch_tasks, recorder):
    where = batch_tasks("raised", OK)
    text = (where / "manifest.yaml").read_text().replace("cpu_seconds: 30", "cpu_seconds: 3000")
    (where / "manifest.yaml").write_text(text)
    err = _refused(batch, recorder, "raised")
    assert err.code == "bad-signature"


def test_signature_by_another_key_is_refused(batch, batch_tasks, recorder):
    batch_tasks("forged", OK, sign=False)
    manifest = manifest_load("forged", task_dirs())
    forged = hmac.new(b"not-the-server-key", canonical_json(manifest.doc), hashlib.sha256).hexdigest()
    sigs = signature_file().read()
    sigs["forged"] = {"version": "1.0.0", "hmac": forged}
    signature_file().write(sigs)
    assert forged != hmac.new(signing_key(), canonical_json(manifest.doc), hashlib.sha256).hexdigest()
    assert _refused(batch, recorder, "forged").code == "bad-signature"


def test_shipped_tasks_are_signed_by_setup_and_known(batch):
    for name in ("idw", "kriging", "dbscan", "hotspots", "ndvi"):
        assert batch.supports(name)
    assert not batch.supports("nope")
    assert batch.isolated and not batch.needs_database and batch.tier == "batch"
