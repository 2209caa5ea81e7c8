"""Search benchmark: GET /api/v1/search's selector over a generated catalogue of 100 000 tracks.

    make bench-search                      # 100 000 tracks, 10 000 albums, 3 000 artists, 200 queries
    make bench-search BENCH_TRACKS=20000

Generates a catalogue of made-up but realistic names: 3 000 artists ("The Velvet Lanterns", "Zoë
Hartmann", "Motörhead"-like accented spellings on about a fifth), 10 000 albums, BENCH_TRACKS tracks, in a
music library the listener is granted, an audiobook one, and one they are not (every query applies the
grants). Then 200 queries as people type them, 50 of each kind: exact (a whole title or name, any case),
prefix (its first 3-6 characters), typo (one letter replaced, dropped or doubled in a word of 6+ letters),
accent (an accented name typed without its accents). For each, selectors.search (10 of each kind with the
listener's marks and covers), p50/p99, against a ceiling measured in the same run: the search's fixed part
(the libraries, the settings, the rows with marks and covers) with a trivial indexed equality lookup (the
normalised title = the text, on its btree index) for the album and track ids in place of the matching.
Prints the EXPLAIN of every statement the search runs for an example of each kind, and whether it reads
an index. Targets (issue 17): p50 <= 20 ms and <= 5x the ceiling.
The database is a throw-away one (created and dropped here), never the server's.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import unicodedata
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revenge.settings")

import django  # noqa: E402

# ruff: noqa: T201 - a benchmark prints its figures

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from apps.library import selectors  # noqa: E402
from apps.library.models import Library, LibraryAccess, LibraryKind, Track  # noqa: E402
from apps.library.search import search_term  # noqa: E402

TARGET_P50_MS = 20.0
TARGET_RATIO = 5.0
LIMIT = 10

ADJECTIVES = """silver velvet broken golden hollow electric quiet wild northern burning crystal midnight
scarlet paper iron lonely frozen hidden electric distant crimson wooden bitter gentle savage restless
neon faded sacred endless rusty violet amber cosmic liquid morning evening summer winter autumn""".split()
NOUNS = """lantern river engine garden mirror harbour shadow window dream ocean mountain horizon signal
station machine forest desert island thunder feather pilot sparrow wolf tiger raven comet anchor bridge
circle letter candle echo valley empire kingdom highway orchard meadow tower canyon glacier""".split()
FIRST = """Zoë Renée José Björn Sigrún Anaïs Chloé Søren Ingrid Mateo Lucía Émile Noémie Joël Ågot Jürgen
Dvořák Siân Maël Agnès Oskar Marta Lena Tomás Inés Jonas Clara Hugo Nora Felix Elif Ana Kai Mila""".split()
LAST = """Hartmann Müller Løvland Núñez Sørensen Gómez Dubois Björk Ångström Köhler Peña Fernández Lefèvre
Novák Jansson Rossi Moreau Weiß Öberg Castaño Mendès Kovač Białas Ibáñez Żuk Larsen Bauer Silva""".split()
ACCENTS = str.maketrans({"o": "ö", "a": "á", "e": "é", "u": "ü", "i": "í", "n": "ñ"})


def artist_names(count: int, rng: random.Random) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        shape = rng.random()
        if shape < 0.4:
            name = f"The {rng.choice(ADJECTIVES).title()} {rng.choice(NOUNS).title()}s"
        elif shape < 0.75:
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        else:
            name = f"{rng.choice(ADJECTIVES).title()}{rng.choice(NOUNS)}"
        if rng.random() < 0.2:  # Motörhead, Mötley Crüe: an accent where the language has none
            word = rng.randrange(len(name.split()))
            parts = name.split()
            parts[word] = parts[word][:2] + parts[word][2:].translate(ACCENTS)
            name = " ".join(parts)
        names.add(name)
    return sorted(names)


def title(rng: random.Random, words: int) -> str:
    pool = [*ADJECTIVES, *NOUNS, "of", "the", "in", "a", "my", "your", "and"]
    text = " ".join(rng.choice(pool) for _ in range(words)).capitalize()
    return text.translate(ACCENTS) if rng.random() < 0.1 else text


def generate(tracks: int, rng: random.Random) -> tuple[object, dict[str, list[str]]]:
    """The catalogue, in one INSERT per table. Returns the listener and the names used (for the queries)."""
    listener = get_user_model().objects.create_user("bench-listener", password="x")
    mine = Library.objects.create(name="Bench music", kind=LibraryKind.MUSIC, root_paths=["/nonexistent/bench/a"])
    other = Library.objects.create(name="Bench other", kind=LibraryKind.MUSIC, root_paths=["/nonexistent/bench/b"])
    books = Library.objects.create(name="Bench books", kind=LibraryKind.AUDIOBOOK, root_paths=["/nonexistent/bench/c"])
    LibraryAccess.objects.create(user=listener, library=mine)
    LibraryAccess.objects.create(user=listener, library=books)
    artists = artist_names(3000, rng)
    album_rows = []
    for number in range(10_000):
        library = other.pk if number % 10 == 0 else books.pk if number % 25 == 1 else mine.pk
        album_rows.append((library, f"{title(rng, rng.randint(1, 4))} {number}", rng.choice(artists)))
    track_titles = [title(rng, rng.randint(1, 5)) for _ in range(tracks)]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO library_album (library_id, title, album_artist, album_artists, artists, genres, year,
                compilation, release_type, author, track_count, duration_ms, created_at, updated_at)
            SELECT library_id, title, artist, ARRAY[artist], ARRAY[artist], '{}', 2000, false, '', '', 10, 0,
                now(), now()
            FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS row(library_id, title, artist)
            """,
            [[row[0] for row in album_rows], [row[1] for row in album_rows], [row[2] for row in album_rows]],
        )
        cursor.execute(
            """
            INSERT INTO library_track (library_id, album_id, group_key, title, artists, album_artist, album_artists,
                genres, disc_subtitle, track_number, year, description, duration_ms, tags, source_fingerprint,
                missing, created_at, updated_at)
            SELECT album.library_id, album.id, 'f/' || n || '.mp3', titles.title, album.artists, album.album_artist,
                album.album_artists, '{}', '', 1 + n %% 10, 2000, '', 200000, '{}', md5(n::text), false, now(), now()
            FROM unnest(%s::text[]) WITH ORDINALITY AS titles(title, n)
            JOIN library_album AS album ON album.id = (SELECT min(id) FROM library_album) + n %% 10000
            """,
            [track_titles],
        )
        # What autovacuum does after a bulk load on a running server: besides the statistics, it moves the
        # GIN indexes' pending entries (fastupdate) into the index. Left there, every search reads them all:
        # `artists && {3 names}` took 43 ms before and 0.1 ms after (a plain ANALYZE does not move them).
        cursor.execute("VACUUM ANALYZE")
    visible_albums = [row[1] for row in album_rows if row[0] != other.pk]
    return listener, {"artists": artists, "albums": visible_albums, "tracks": track_titles}


def plain(text: str) -> str:
    return "".join(char for char in unicodedata.normalize("NFKD", text) if not unicodedata.combining(char))


def typo(text: str, rng: random.Random) -> str | None:
    words = [word for word in text.split() if len(word) >= 6 and word.isalpha()]
    if not words:
        return None
    word = rng.choice(words)
    at = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        changed = word[:at] + rng.choice("aeiourst") + word[at + 1 :]
    elif kind == 1:
        changed = word[:at] + word[at + 1 :]
    else:
        changed = word[:at] + word[at] + word[at:]
    return text.replace(word, changed, 1)


def queries(names: dict[str, list[str]], rng: random.Random) -> list[tuple[str, str]]:
    """200 (kind, text): 50 each of exact, prefix, typo, accent."""
    everything = [*names["artists"], *names["albums"], *names["tracks"]]
    chosen: list[tuple[str, str]] = []
    while sum(kind == "exact" for kind, _ in chosen) < 50:
        chosen.append(("exact", rng.choice(everything).lower()))
    while sum(kind == "prefix" for kind, _ in chosen) < 50:
        text = plain(rng.choice(everything))
        chosen.append(("prefix", text[: rng.randint(3, 6)].strip()))
    while sum(kind == "typo" for kind, _ in chosen) < 50:
        if (text := typo(plain(rng.choice(everything)), rng)) is not None:
            chosen.append(("typo", text))
    accented = [name for name in names["artists"] if plain(name) != name]
    while sum(kind == "accent" for kind, _ in chosen) < 50:
        chosen.append(("accent", plain(rng.choice(accented))))
    return [(kind, text) for kind, text in chosen if len(text) >= 2]


def ceiling_lookup(user: object, text: str) -> None:
    """selectors.search's fixed part with a trivial lookup for its matching: the libraries, the settings, one
    indexed equality (the normalised title = the text, on its btree) for the album ids and one for the track
    ids, then those rows with the listener's marks and covers, as the search reads them."""
    kinds = list(Library.objects.visible_to(user).values_list("pk", "kind"))  # type: ignore[arg-type]
    music = [pk for pk, kind in kinds if kind == LibraryKind.MUSIC]
    everything = [pk for pk, _kind in kinds]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)")
        cursor.execute(
            "SELECT id FROM library_album WHERE search_title = lower(%s) AND library_id = ANY(%s) LIMIT %s",
            [text, music, LIMIT],
        )
        album_ids = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT id FROM library_track WHERE search_title = lower(%s) AND library_id = ANY(%s) LIMIT %s",
            [text, everything, LIMIT],
        )
        track_ids = [row[0] for row in cursor.fetchall()]
    selectors.album_list(user=user).in_bulk(album_ids or [0])  # type: ignore[arg-type]
    selectors.track_list(user=user).in_bulk(track_ids or [0])  # type: ignore[arg-type]


def timed_ms(function) -> float:
    start = time.perf_counter()
    function()
    return (time.perf_counter() - start) * 1000


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def explain_shapes(user: object, examples: dict[str, str]) -> list[tuple[str, bool]]:
    """EXPLAIN of every statement selectors.search runs for an example of each kind of query text (with its
    settings) that reads the catalogue, and whether it reads indexes only (no sequential scan)."""
    results = []
    for kind, text in examples.items():
        statements: list[tuple[str, object]] = []

        def capture(execute, sql, params, many, context, statements=statements):
            statements.append((sql, params))
            return execute(sql, params, many, context)

        with connection.execute_wrapper(capture):
            selectors.search(user=user, term=search_term(text), limit=LIMIT)  # type: ignore[arg-type]
        with transaction.atomic(), connection.cursor() as cursor:
            for number, (sql, params) in enumerate(statements):
                if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
                    continue  # savepoints
                cursor.execute("EXPLAIN " + sql, params)
                plan = "\n".join(row[0] for row in cursor.fetchall())
                if "set_config(" in sql:
                    cursor.execute(sql, params)  # the search's settings, for the statements after it
                    continue
                if "library_track" not in sql and "library_album" not in sql:
                    continue  # the libraries (a few rows, read before the settings)
                uses_index = "Seq Scan" not in plan and "Index" in plan
                name = f"{kind} {text!r} / statement {number}"
                results.append((name, uses_index))
                print(f"--- {name}: {'index' if uses_index else 'NO INDEX'}\n{sql.strip()[:300]}\n{plan}\n")
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tracks", type=int, default=int(os.environ.get("BENCH_TRACKS", "100000")))
    args = parser.parse_args()
    rng = random.Random(17)
    # A name of its own: the test database of the same settings may be in use by a test run.
    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"bench_search_{os.getpid()}"
    test_database = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        start = time.perf_counter()
        listener, names = generate(args.tracks, rng)
        print(
            f"generated {Track.objects.count()} tracks, {len(names['albums'])} visible albums, "
            f"{len(names['artists'])} artists in {time.perf_counter() - start:.1f} s"
        )
        texts = queries(names, rng)
        for _kind, text in texts[:20]:  # warm-up: plans, caches
            selectors.search(user=listener, term=search_term(text), limit=LIMIT)
            ceiling_lookup(listener, text)
        # Interleaved, so that load from other processes falls on both alike.
        by_kind: dict[str, list[float]] = {}
        found: dict[str, int] = {}
        ceiling: list[float] = []
        for kind, text in texts:
            term = search_term(text)
            results: list[selectors.SearchResults] = []
            by_kind.setdefault(kind, []).append(
                timed_ms(
                    lambda term=term, out=results: out.append(selectors.search(user=listener, term=term, limit=LIMIT))
                )
            )
            ceiling.append(timed_ms(lambda text=text: ceiling_lookup(listener, text)))
            hit = results[0]
            found[kind] = found.get(kind, 0) + bool(hit.artists or hit.albums or hit.tracks or hit.books)
        examples = {kind: next(text for k, text in texts if k == kind) for kind in by_kind}
        plans = explain_shapes(listener, examples)
        every = [sample for samples in by_kind.values() for sample in samples]
        ceiling_p50 = statistics.median(ceiling)
        print(f"{'queries':10} {'n':>4} {'found':>6} {'p50 ms':>8} {'p99 ms':>8} {'p50/ceiling':>12}")
        for kind, samples in by_kind.items():
            p50 = statistics.median(samples)
            print(
                f"{kind:10} {len(samples):>4} {found[kind]:>6} {p50:>8.1f} {pct(samples, 0.99):>8.1f} "
                f"{p50 / ceiling_p50:>12.2f}"
            )
        p50 = statistics.median(every)
        print(f"{'all':10} {len(every):>4} {sum(found.values()):>6} {p50:>8.1f} {pct(every, 0.99):>8.1f} "
              f"{p50 / ceiling_p50:>12.2f}")  # fmt: skip
        print(f"{'ceiling':10} {len(ceiling):>4} {'':>6} {ceiling_p50:>8.1f} {pct(ceiling, 0.99):>8.1f}")
        indexed = sum(uses for _name, uses in plans)
        print(
            f"\nsearch over {args.tracks} tracks: p50 {p50:.1f} ms (target <= {TARGET_P50_MS:.0f}: "
            f"{'met' if p50 <= TARGET_P50_MS else 'NOT met'}), {p50 / ceiling_p50:.2f}x the ceiling (target <= "
            f"{TARGET_RATIO:.0f}x: {'met' if p50 / ceiling_p50 <= TARGET_RATIO else 'NOT met'}); "
            f"index use in {indexed}/{len(plans)} query shapes"
        )
    finally:
        connection.creation.destroy_test_db(test_database, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
