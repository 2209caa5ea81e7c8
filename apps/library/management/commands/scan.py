from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from tqdm import tqdm

from apps.library.models import Library, ScanStatus, ScanTrigger
from apps.library.services import scan_claim, scan_request, scan_run

PHASES = {"walk": "finding files", "read": "reading tags", "group": "building tracks"}


class Command(BaseCommand):
    help = "Scan a library (by id or name), or every library, in the foreground with a progress bar."

    def add_arguments(self, parser):
        parser.add_argument("library", nargs="?", help="library id or name (default: all libraries)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs and cron)")

    def handle(self, *args, library=None, no_progress=False, **options):
        libraries = Library.objects.order_by("name")
        if library is not None:
            match = Q(name=library) | (Q(pk=int(library)) if library.isdigit() else Q())
            libraries = libraries.filter(match)
            if not libraries:
                names = ", ".join(Library.objects.values_list("name", flat=True)) or "none yet (create one in /admin/)"
                raise CommandError(f"No library {library!r}. Libraries: {names}.")
        if not libraries:
            raise CommandError("There are no libraries yet: create one in the admin (/admin/).")
        failed = 0
        for each in libraries:
            failed += not self._scan(each, show_progress=not no_progress)
        if failed:
            raise CommandError(f"{failed} scan(s) failed.")

    def _scan(self, library: Library, *, show_progress: bool) -> bool:
        job, created = scan_request(library=library, trigger=ScanTrigger.COMMAND, dispatch=False)
        if not created:
            self.stderr.write(f"{library.name}: scan #{job.pk} is already {job.status}; skipped.")
            return True
        claimed = scan_claim(job_id=job.pk)
        assert claimed is not None  # queued just now and never sent to a worker: it is ours
        job = claimed
        bar: tqdm | None = None
        phase_shown = ""

        def progress(phase: str, done: int, total: int) -> None:
            nonlocal bar, phase_shown
            if not show_progress:
                return
            if phase != phase_shown:
                if bar is not None:
                    bar.close()
                bar = tqdm(desc=f"{library.name}: {PHASES[phase]}", total=total or None, unit=" files")
                phase_shown = phase
            assert bar is not None  # made at the first phase
            if total and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

        started = time.monotonic()
        try:
            job = scan_run(job=job, progress=progress)
        except Exception as exc:  # noqa: BLE001 - reported as a failed scan; the job row says why
            self.stderr.write(self.style.ERROR(f"{library.name}: scan #{job.pk} failed: {exc}"))
            return False
        finally:
            if bar is not None:
                bar.close()
        if job.status == ScanStatus.FAILED:  # refused before reading anything (see library_folders_check)
            self.stderr.write(self.style.ERROR(f"{library.name}: scan #{job.pk} failed: {job.failure}"))
            return False
        elapsed = time.monotonic() - started
        rate = job.seen / elapsed if elapsed else 0
        style = self.style.SUCCESS if job.status == ScanStatus.SUCCEEDED and not job.errors else self.style.WARNING
        self.stdout.write(
            style(
                f"{library.name}: {job.seen} files seen, {job.added} added, {job.updated} updated, "
                f"{job.unchanged} unchanged, {job.missing} missing, {job.restored} restored, {job.errors} errors; "
                f"{job.tracks_changed} tracks new or changed; {elapsed:.1f} s ({rate:.0f} files/s)"
            )
        )
        for message in job.error_messages[:10]:
            self.stdout.write(f"  ! {message}")
        if job.errors > 10:
            self.stdout.write(f"  … {job.errors - 10} more: see scan #{job.pk} in the admin")
        return True
