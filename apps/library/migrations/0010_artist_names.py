# The distinct names of the albums' artists (album artists and everyone credited), for search (issue 17):
# matching a name against 3 000 distinct names instead of the names of 10 000 albums (or 100 000 tracks) is
# what makes the artists' similarity tier cheap (bench/search.py). Filled by a statement-level trigger on
# library_album (one INSERT ... SELECT DISTINCT of the statement's new rows, whatever their number), so every
# writer of albums (the scanner, the admin, tests) keeps it without knowing it. A name no album carries any
# more stays: it finds no album, so search shows nothing for it.
from django.db import migrations

CREATE_SQL = """
CREATE TABLE library_artistname (
    name text PRIMARY KEY,
    search_name text GENERATED ALWAYS AS (revenge_search_norm(name)) STORED
);
CREATE INDEX library_artistname_search_trgm ON library_artistname USING gin (search_name gin_trgm_ops)
    WITH (fastupdate = off);
CREATE INDEX library_artistname_search_prefix ON library_artistname (search_name text_pattern_ops);
CREATE INDEX library_album_album_artists_gin ON library_album USING gin (album_artists);
-- 0007's word index on the albums' names served the search of names that this table now serves.
DROP INDEX IF EXISTS library_album_search_names_words;

CREATE FUNCTION library_artistname_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO library_artistname (name)
    SELECT DISTINCT name FROM new_albums, unnest(new_albums.album_artists || new_albums.artists) AS name
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER library_album_artistname_insert AFTER INSERT ON library_album
    REFERENCING NEW TABLE AS new_albums FOR EACH STATEMENT EXECUTE FUNCTION library_artistname_add();
CREATE TRIGGER library_album_artistname_update AFTER UPDATE ON library_album
    REFERENCING NEW TABLE AS new_albums FOR EACH STATEMENT EXECUTE FUNCTION library_artistname_add();

INSERT INTO library_artistname (name)
SELECT DISTINCT name FROM library_album, unnest(album_artists || artists) AS name
ON CONFLICT DO NOTHING;
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS library_album_artistname_insert ON library_album;
DROP TRIGGER IF EXISTS library_album_artistname_update ON library_album;
DROP FUNCTION IF EXISTS library_artistname_add();
DROP INDEX IF EXISTS library_album_album_artists_gin;
CREATE INDEX IF NOT EXISTS library_album_search_names_words ON library_album
    USING gin (to_tsvector('simple'::regconfig, revenge_search_words(search_names)));
DROP TABLE IF EXISTS library_artistname;
"""


class Migration(migrations.Migration):
    dependencies = [("library", "0009_artwork_unreferenced_since")]

    operations = [migrations.RunSQL(CREATE_SQL, DROP_SQL)]
