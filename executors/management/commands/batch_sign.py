"""Sign batch task manifests (all, or the named ones) into the signatures file."""

from __future__ import annotations

import re
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from executors.batch.executor import signature_file, signing_key, task_dirs
from executors.batch.manifest import (
    ManifestRefused,
    file_sha256,
    manifest_load,
    manifest_sign,
    task_dir,
    task_names,
)


class Command(BaseCommand):
    help = "Sign batch task manifests with HONUA_BATCH_SIGNING_KEY (writes HONUA_BATCH_SIGNATURES)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", help="task names (default: every task)")
        parser.add_argument(
            "--rehash", action="store_true",
            help="first write the script's current sha256 into the manifest (after reviewing the script)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dirs = task_dirs()
        names = options["names"] or task_names(dirs)
        for name in names:
            if options["rehash"]:
                where = task_dir(name, dirs)
                if where is None:
                    raise CommandError(f"unknown batch task {name!r}")
                path = where / "manifest.yaml"
                text = path.read_text()
                script = where / str((yaml.safe_load(text) or {}).get("script") or "task.py")
                new = re.sub(r"(?m)^sha256:.*$", f"sha256: {file_sha256(script)}", text, count=1)
                path.write_text(new)
            try:
                manifest = manifest_load(name, dirs)
                manifest_sign(manifest, key=signing_key(), signatures=signature_file())
            except ManifestRefused as exc:
                raise CommandError(exc.message) from exc
            if options["verbosity"] > 0:
                self.stdout.write(f"signed batch task {manifest.name} {manifest.version}")
