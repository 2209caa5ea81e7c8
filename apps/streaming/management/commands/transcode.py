from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone
from tqdm import tqdm

from apps.library.models import Library, Track
from apps.streaming.models import Rendition, RenditionStatus
from apps.streaming.selectors import renditions_ready
from apps.streaming.services import Outcome, rendition_transcode


class Command(BaseCommand):
    help = (
        "Build the HLS renditions of tracks in the foreground, with a progress bar. Without --missing, the "
        "selected tracks are rebuilt even when ready."
    )

    def add_arguments(self, parser):
        parser.add_argument("--library", help="library id or name (default: every library)")
        parser.add_argument("--track", type=int, action="append", help="track id (repeatable)")
        parser.add_argument("--missing", action="store_true", help="only tracks whose renditions are not all ready")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs and cron)")

    def handle(self, *args, library=None, track=None, missing=False, no_progress=False, **options):
        tracks = Track.objects.filter(missing=False).prefetch_related("files").order_by("pk")
        if library is not None:
            match = Q(name=library) | (Q(pk=int(library)) if library.isdigit() else Q())
            libraries = Library.objects.filter(match)
            if not libraries:
                names = ", ".join(Library.objects.values_list("name", flat=True)) or "none yet"
                raise CommandError(f"No library {library!r}. Libraries: {names}.")
            tracks = tracks.filter(library__in=libraries)
        if track:
            tracks = tracks.filter(pk__in=track)
            absent = sorted(set(track) - set(tracks.values_list("pk", flat=True)))
            if absent:
                raise CommandError(f"No playable track with id {', '.join(map(str, absent))}.")
        selected = [t for t in tracks if not missing or renditions_ready(track=t) is None]
        if not selected:
            self.stdout.write("Nothing to transcode.")
            return
        if not missing:
            Rendition.objects.filter(track__in=selected).update(
                status=RenditionStatus.PENDING, updated_at=timezone.now()
            )
        total_s = sum(t.duration_ms for t in selected) / 1000
        bar = tqdm(total=round(total_s), unit=" audio s", disable=no_progress, desc="transcoding")
        counts: dict[str, int] = {}
        failures: list[str] = []
        started = time.monotonic()
        for each in selected:
            done_before = bar.n

            def progress(fraction: float, base: int = done_before, length_s: float = each.duration_ms / 1000) -> None:
                bar.update(round(base + fraction * length_s) - bar.n)

            bar.set_postfix_str(each.title[:40])
            result = rendition_transcode(track_id=each.pk, progress=progress)
            bar.update(round(done_before + each.duration_ms / 1000) - bar.n)
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
            if result.outcome == Outcome.FAILED:
                failures.append(f"  ! track {each.pk} ({each.title}): {result.error.splitlines()[-1][:200]}")
        bar.close()
        elapsed = time.monotonic() - started
        summary = ", ".join(f"{n} {outcome.replace('_', ' ')}" for outcome, n in sorted(counts.items()))
        speed = total_s / elapsed if elapsed else 0
        style = self.style.WARNING if failures else self.style.SUCCESS
        self.stdout.write(style(f"{len(selected)} tracks: {summary}; {elapsed:.1f} s ({speed:.0f}x realtime)"))
        for line in failures[:20]:
            self.stdout.write(line)
        if failures:
            raise CommandError(f"{len(failures)} transcode(s) failed.")
