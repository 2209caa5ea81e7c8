# Search in tiers (selectors.search, issue 17's 20 ms target on 100 000 tracks): word indexes, so that "a
# word of the text starts with the term" reads the posting lists of the term's words instead of every row
# sharing one of its trigrams (LIKE '% hollow midnight%' on the tracks' trigram index: 131 candidates from
# the lists of 14 trigrams in 11 ms; on the word index 0.4 ms), and a trigram index on the names of the tracks
# that are on no album (those the search cannot reach through their album's names).
from django.db import migrations

# revenge_search_words: the text's letters and digits, every other run of characters one space, so that the
# text-search parser's words are exactly those runs (it would keep '1.5' or 'a/b' whole, and miss the term
# '5'). revenge_search_prefix_query: every such word of the term as a prefix, all required ('ines kovac' ->
# 'ines':* & 'kovac':*). Schema-qualified bodies, as in 0005 (PostgreSQL 17+ builds indexes with a
# restricted search_path).
FUNCTIONS_SQL = """
CREATE OR REPLACE FUNCTION {own}.revenge_search_words(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT pg_catalog.regexp_replace($1, '[^[:alnum:]]+', ' ', 'g') $$;
CREATE OR REPLACE FUNCTION {own}.revenge_search_prefix_query(text) RETURNS tsquery
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$
        SELECT pg_catalog.to_tsquery('pg_catalog.simple'::regconfig,
            coalesce(pg_catalog.string_agg(pg_catalog.quote_literal(word) || ':*', ' & '), ''))
        FROM pg_catalog.regexp_split_to_table(
            pg_catalog.btrim({own}.revenge_search_words({own}.revenge_search_norm($1))), ' ') AS word
        WHERE word <> ''
    $$;
"""

INDEXES_SQL = """
CREATE INDEX library_track_search_title_words ON library_track
    USING gin (to_tsvector('simple'::regconfig, revenge_search_words(search_title)));
CREATE INDEX library_album_search_names_words ON library_album
    USING gin (to_tsvector('simple'::regconfig, revenge_search_words(search_names)));
CREATE INDEX library_track_search_artists_no_album_trgm ON library_track
    USING gin (search_artists gin_trgm_ops) WHERE album_id IS NULL;
"""

DROP_SQL = """
DROP INDEX IF EXISTS library_track_search_title_words, library_album_search_names_words,
    library_track_search_artists_no_album_trgm;
DROP FUNCTION IF EXISTS revenge_search_prefix_query(text), revenge_search_words(text);
"""


def create_functions(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT quote_ident(current_schema())")
        (own,) = cursor.fetchone()
        cursor.execute(FUNCTIONS_SQL.format(own=own))


class Migration(migrations.Migration):
    dependencies = [("library", "0006_loudness_lyrics")]

    operations = [
        migrations.RunPython(create_functions, migrations.RunPython.noop),
        migrations.RunSQL(INDEXES_SQL, DROP_SQL),
    ]
