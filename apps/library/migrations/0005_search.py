# Search (issue 17): accent-insensitive, typo-tolerant matching of titles and names with PostgreSQL's contrib
# extensions unaccent and pg_trgm. The normalising functions are SQL; the columns they fill are generated
# fields of the models; tests/library/test_search.py checks with EXPLAIN that every query shape of
# apps/library/search.py uses the indexes below.
from django.db import DatabaseError, migrations, models, transaction

from apps.library.search import ArrayConcat, SearchNorm, SearchNormArray

REQUIRED_EXTENSIONS = ("pg_trgm", "unaccent")

# IMMUTABLE wrappers, so they can be indexed: unaccent(text) is only STABLE because it looks its dictionary
# up by name through search_path. Naming the dictionary and the function by schema removes that, which is
# what PostgreSQL's documentation and everyone's `f_unaccent` do. array_to_string is STABLE in general (it
# calls the element type's output function); for text[] that output never changes, so the array form is
# declared IMMUTABLE too. lower() after unaccent(): 'Ö' -> 'O' -> 'o'.
# Every name in the bodies is schema-qualified: PostgreSQL 17+ runs CREATE INDEX, VACUUM and ANALYZE with
# search_path = pg_catalog, pg_temp, where an unqualified f_unaccent is not found.
FUNCTIONS_SQL = """
CREATE OR REPLACE FUNCTION {own}.f_unaccent(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT {schema}.unaccent('{schema}.unaccent'::regdictionary, $1) $$;
CREATE OR REPLACE FUNCTION {own}.revenge_search_norm(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT pg_catalog.lower({own}.f_unaccent($1)) $$;
CREATE OR REPLACE FUNCTION {own}.revenge_search_norm_array(text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT pg_catalog.lower({own}.f_unaccent(pg_catalog.array_to_string($1, ' '))) $$;
"""

# The normalised texts are stored generated columns (search_title, search_artists, search_names): a match
# reads them instead of calling unaccent per row, which made a search over 5 000 tracks take 1.2 s. Trigram
# GIN indexes serve the word-prefix LIKE and the similarity operators (%, <%); the btree ones
# (text_pattern_ops, whatever the database's collation) serve exact and whole-text prefix matches, also for
# the two-character queries whose trigrams would match too much.
INDEXES_SQL = """
CREATE INDEX library_track_search_title_trgm ON library_track USING gin (search_title gin_trgm_ops);
CREATE INDEX library_track_search_title_prefix ON library_track (search_title text_pattern_ops);
CREATE INDEX library_track_search_artists_trgm ON library_track USING gin (search_artists gin_trgm_ops);
CREATE INDEX library_album_search_title_trgm ON library_album USING gin (search_title gin_trgm_ops);
CREATE INDEX library_album_search_title_prefix ON library_album (search_title text_pattern_ops);
CREATE INDEX library_album_search_names_trgm ON library_album USING gin (search_names gin_trgm_ops);
"""

DROP_INDEXES_SQL = """
DROP INDEX IF EXISTS library_track_search_title_trgm, library_track_search_title_prefix,
    library_track_search_artists_trgm, library_album_search_title_trgm, library_album_search_title_prefix,
    library_album_search_names_trgm;
"""

DROP_FUNCTIONS_SQL = """
DROP FUNCTION IF EXISTS revenge_search_norm_array(text[]), revenge_search_norm(text), f_unaccent(text);
"""


class MissingExtension(RuntimeError):
    pass


def create_search(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_available_extensions WHERE name = ANY(%s)", [list(REQUIRED_EXTENSIONS)])
        available = {name for (name,) in cursor.fetchall()}
        missing = [name for name in REQUIRED_EXTENSIONS if name not in available]
        if missing:
            cursor.execute("SHOW server_version")
            (version,) = cursor.fetchone()
            raise MissingExtension(
                f"PostgreSQL {version} at DATABASE_URL lacks the extension(s) {', '.join(missing)}, which search "
                "needs: install the server's contrib modules (Debian/Ubuntu: they come with the `postgresql` "
                "package; RHEL: `postgresql-contrib`) and run migrate again. See README, 'Against your own "
                "PostgreSQL'."
            )
        for name in REQUIRED_EXTENSIONS:
            cursor.execute(f"CREATE EXTENSION IF NOT EXISTS {name}")
        cursor.execute("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'unaccent'")
        (schema,) = cursor.fetchone()
        # Where the tables are (the first schema of search_path), which the app's queries find them by.
        cursor.execute("SELECT quote_ident(current_schema())")
        (own,) = cursor.fetchone()
        cursor.execute(FUNCTIONS_SQL.format(schema=schema, own=own))
        _price_similarity(schema_editor.connection, cursor, schema)


def _price_similarity(connection, cursor, schema):
    # PostgreSQL prices pg_trgm's % like '=' (COST 1): filtering every visible track by it looked cheaper than
    # the trigram indexes, even with seq scans off (selectors.search), and took 1.3 s on 100 000 tracks where
    # the indexes take a fifth of that (bench/search.py). Only the extension's owner (a superuser, as with the
    # embedded server) may change it; elsewhere search still works, slower on big libraries (README).
    try:
        with transaction.atomic(using=connection.alias):
            cursor.execute(f"ALTER FUNCTION {schema}.similarity_op(text, text) COST 200")
    except DatabaseError:
        pass


def drop_functions(apps, schema_editor):
    # The extensions stay: other objects in the database (or the DBA) may use them.
    schema_editor.execute(DROP_FUNCTIONS_SQL)


def generated(expression):
    return models.GeneratedField(expression=expression, output_field=models.TextField(), db_persist=True)


class Migration(migrations.Migration):
    dependencies = [("library", "0004_artwork")]

    operations = [
        migrations.RunPython(create_search, drop_functions),
        migrations.AddField("album", "search_title", generated(SearchNorm("title"))),
        migrations.AddField(
            "album", "search_names", generated(SearchNormArray(ArrayConcat("album_artists", "artists")))
        ),
        migrations.AddField("track", "search_title", generated(SearchNorm("title"))),
        migrations.AddField("track", "search_artists", generated(SearchNormArray("artists"))),
        migrations.RunSQL(INDEXES_SQL, DROP_INDEXES_SQL),
    ]
