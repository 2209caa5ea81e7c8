"""Response schemas written from the OpenSubsonic specification (opensubsonic/open-subsonic-api,
content/en/docs/Responses/*), as jsonschema dicts, for the JSON answers; XML answers are read into the same
shape (attributes typed by these schemas) and checked against them too (xml_tree below)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from jsonschema import Draft202012Validator

NS = "{http://subsonic.org/restapi}"

STRING = {"type": "string"}
INT = {"type": "integer"}
NONNEG = {"type": "integer", "minimum": 0}
BOOL = {"type": "boolean"}
TIME = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"}


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None, *, closed: bool = True) -> dict[str, Any]:
    properties = {**required, **(optional or {})}
    return {"type": "object", "required": list(required), "properties": properties, "additionalProperties": not closed}


def array(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


NUMBER = {"type": "number"}
ITEM_GENRE = obj({"name": STRING})
# ReplayGain (https://opensubsonic.netlify.app/docs/responses/replaygain/): every field optional; peaks linear.
REPLAY_GAIN = obj(
    {},
    {
        "trackGain": NUMBER, "albumGain": NUMBER, "trackPeak": {"type": "number", "minimum": 0},
        "albumPeak": {"type": "number", "minimum": 0}, "baseGain": NUMBER, "fallbackGain": NUMBER,
    },
)  # fmt: skip
ARTIST_ID_NAME = obj({"id": STRING, "name": STRING})

# Child (https://opensubsonic.netlify.app/docs/responses/child/)
CHILD = obj(
    {"id": STRING, "isDir": BOOL, "title": STRING},
    {
        "parent": STRING, "album": STRING, "artist": STRING, "track": INT, "year": INT, "genre": STRING,
        "coverArt": STRING, "size": NONNEG, "contentType": STRING, "suffix": STRING, "duration": NONNEG,
        "bitRate": NONNEG, "path": STRING, "discNumber": INT, "created": TIME, "albumId": STRING,
        "artistId": STRING, "type": {"enum": ["music", "podcast", "audiobook", "video"]}, "mediaType": STRING,
        "isVideo": BOOL, "playCount": NONNEG, "played": TIME, "bookmarkPosition": NONNEG,
        "userRating": {"type": "integer", "minimum": 1, "maximum": 5}, "starred": TIME,
        "samplingRate": NONNEG, "channelCount": NONNEG, "genres": array(ITEM_GENRE),
        "artists": array(ARTIST_ID_NAME), "displayArtist": STRING, "albumArtists": array(ARTIST_ID_NAME),
        "displayAlbumArtist": STRING, "replayGain": REPLAY_GAIN,
    },
)  # fmt: skip
ALBUM_ID3 = obj(
    {"id": STRING, "name": STRING, "songCount": NONNEG, "duration": NONNEG, "created": TIME},
    {
        "artist": STRING, "artistId": STRING, "coverArt": STRING, "year": INT, "genre": STRING,
        "genres": array(ITEM_GENRE), "artists": array(ARTIST_ID_NAME), "displayArtist": STRING,
        "isCompilation": BOOL, "releaseTypes": array(STRING), "userRating": {"type": "integer", "minimum": 1,
        "maximum": 5}, "starred": TIME, "playCount": NONNEG, "song": array(CHILD),
    },
)  # fmt: skip
RATING = {"type": "integer", "minimum": 1, "maximum": 5}
ARTIST_ID3 = obj(
    {"id": STRING, "name": STRING},
    {"albumCount": NONNEG, "coverArt": STRING, "album": array(ALBUM_ID3), "starred": TIME, "userRating": RATING},
)
PLAYLIST = obj(
    {"id": STRING, "name": STRING, "songCount": NONNEG, "duration": NONNEG, "created": TIME, "changed": TIME},
    {"comment": STRING, "owner": STRING, "public": BOOL, "coverArt": STRING, "entry": array(CHILD)},
)
INDEX = obj({"name": STRING}, {"artist": array(ARTIST_ID3)})
USER_ROLES = ("admin", "settings", "download", "upload", "playlist", "coverArt", "comment", "podcast", "stream",
              "jukebox", "share", "videoConversion")  # fmt: skip
# PodcastEpisode extends Child (https://opensubsonic.netlify.app/docs/responses/podcastepisode/);
# PodcastChannel (.../podcastchannel/); PodcastStatus (.../podcaststatus/).
PODCAST_STATUS = {"enum": ["new", "downloading", "completed", "error", "deleted", "skipped"]}
PODCAST_EPISODE = {
    **CHILD,
    "required": [*CHILD["required"], "channelId", "status"],
    "properties": {
        **CHILD["properties"], "streamId": STRING, "channelId": STRING, "description": STRING,
        "status": PODCAST_STATUS, "publishDate": TIME,
    },
}  # fmt: skip
PODCAST_CHANNEL = obj(
    {"id": STRING, "url": STRING, "status": PODCAST_STATUS},
    {"title": STRING, "description": STRING, "coverArt": STRING, "originalImageUrl": STRING,
     "errorMessage": STRING, "episode": array(PODCAST_EPISODE)},
)  # fmt: skip
PLAY_QUEUE_BASE = {"position": NONNEG, "username": STRING, "changed": TIME, "changedBy": STRING}

# The body of each method's answer: the one key it adds to the envelope.
BODIES: dict[str, dict[str, Any]] = {
    "license": obj({"valid": BOOL}),
    "openSubsonicExtensions": array(obj({"name": STRING, "versions": array(INT)})),
    "tokenInfo": obj({"username": STRING}),
    "user": obj(
        {"username": STRING, **{f"{role}Role": BOOL for role in USER_ROLES}, "scrobblingEnabled": BOOL},
        {"email": STRING, "folder": array(INT)},
    ),
    "musicFolders": obj({}, {"musicFolder": array(obj({"id": INT}, {"name": STRING}))}),
    "indexes": obj({"lastModified": INT, "ignoredArticles": STRING}, {"index": array(INDEX)}),
    "artists": obj({"ignoredArticles": STRING}, {"index": array(INDEX)}),
    "artist": ARTIST_ID3,
    "album": ALBUM_ID3,
    "song": CHILD,
    "directory": obj({"id": STRING, "name": STRING}, {"parent": STRING, "child": array(CHILD)}),
    "genres": obj({}, {"genre": array(obj({"value": STRING, "songCount": NONNEG, "albumCount": NONNEG}))}),
    "albumList": obj({}, {"album": array(CHILD)}),
    "albumList2": obj({}, {"album": array(ALBUM_ID3)}),
    "randomSongs": obj({}, {"song": array(CHILD)}),
    "songsByGenre": obj({}, {"song": array(CHILD)}),
    "searchResult2": obj({}, {"artist": array(ARTIST_ID_NAME), "album": array(CHILD), "song": array(CHILD)}),
    "searchResult3": obj({}, {"artist": array(ARTIST_ID3), "album": array(ALBUM_ID3), "song": array(CHILD)}),
    "bookmarks": obj(
        {},
        {
            "bookmark": array(
                obj(
                    {"position": NONNEG, "username": STRING, "created": TIME, "changed": TIME, "entry": CHILD},
                    {"comment": STRING},
                )
            )
        },
    ),  # fmt: skip
    "playQueue": obj(PLAY_QUEUE_BASE, {"current": STRING, "entry": array(CHILD)}),
    "playQueueByIndex": obj(PLAY_QUEUE_BASE, {"currentIndex": NONNEG, "entry": array(CHILD)}),
    "nowPlaying": obj(
        {},
        {
            "entry": array(
                {
                    **CHILD,
                    "required": [*CHILD["required"], "username", "minutesAgo"],
                    "properties": {
                        **CHILD["properties"],
                        "username": STRING,
                        "minutesAgo": NONNEG,
                        "playerId": INT,
                        "playerName": STRING,
                    },
                }
            )
        },
    ),  # fmt: skip
    "starred": obj(
        {},
        {
            "artist": array(obj({"id": STRING, "name": STRING}, {"starred": TIME, "userRating": RATING})),
            "album": array(CHILD),
            "song": array(CHILD),
        },
    ),  # fmt: skip
    "playlists": obj({}, {"playlist": array(PLAYLIST)}),
    "lyricsList": obj(
        {},
        {
            "structuredLyrics": array(
                obj(
                    {"lang": STRING, "synced": BOOL, "line": array(obj({"value": STRING}, {"start": NONNEG}))},
                    {"displayArtist": STRING, "displayTitle": STRING, "offset": INT},
                )
            )
        },
    ),  # fmt: skip
    "lyrics": obj({}, {"artist": STRING, "title": STRING, "value": STRING}),
    "playlist": PLAYLIST,
    "starred2": obj({}, {"artist": array(ARTIST_ID3), "album": array(ALBUM_ID3), "song": array(CHILD)}),
    "artistInfo": obj({}, {"biography": STRING}),
    "artistInfo2": obj({}, {"biography": STRING}),
    "albumInfo": obj({}, {"notes": STRING}),
    "topSongs": obj({}, {"song": array(CHILD)}),
    "similarSongs": obj({}, {"song": array(CHILD)}),
    "similarSongs2": obj({}, {"song": array(CHILD)}),
    "podcasts": obj({}, {"channel": array(PODCAST_CHANNEL)}),
    "newestPodcasts": obj({}, {"episode": array(PODCAST_EPISODE)}),
    "podcastEpisode": PODCAST_EPISODE,
    "error": obj({"code": {"enum": [0, 10, 20, 30, 40, 41, 42, 43, 44, 50, 60, 70]}}, {"message": STRING}),
}

ENVELOPE_FIELDS = {
    "status": {"enum": ["ok", "failed"]},
    "version": {"const": "1.16.1"},
    "type": {"const": "revenge"},
    "serverVersion": STRING,
    "openSubsonic": {"const": True},
}
RESPONSE = {
    "type": "object",
    "required": ["subsonic-response"],
    "additionalProperties": False,
    "properties": {
        "subsonic-response": {
            "type": "object",
            "required": list(ENVELOPE_FIELDS),
            "properties": {**ENVELOPE_FIELDS, **BODIES},
            "additionalProperties": False,
            "maxProperties": len(ENVELOPE_FIELDS) + 1,
        }
    },
}
_validator = Draft202012Validator(RESPONSE)


def check(document: dict[str, Any]) -> dict[str, Any]:
    """Raise if the answer breaks the schema; return its subsonic-response."""
    errors = sorted(_validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    return document["subsonic-response"]


def _coerce(text: str, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "integer":
        return int(text)
    if kind == "number":
        return float(text)
    if kind == "boolean" or isinstance(schema.get("const"), bool):
        return {"true": True, "false": False}[text]
    if "enum" in schema and all(isinstance(v, int) for v in schema["enum"]):
        return int(text)
    return text


def _element(element: ET.Element, schema: dict[str, Any]) -> Any:
    if schema.get("type") != "object":
        return _coerce(element.text or "", schema)
    properties = schema.get("properties", {})
    tree: dict[str, Any] = {key: _coerce(value, properties.get(key, STRING)) for key, value in element.attrib.items()}
    if element.text and element.text.strip() and "value" in properties:
        tree["value"] = element.text
    for child in element:
        name = child.tag.removeprefix(NS)
        child_schema = properties.get(name, {"type": "object"})
        if child_schema.get("type") == "array":
            tree.setdefault(name, []).append(_element(child, child_schema["items"]))
        else:
            assert name not in tree, f"<{name}> repeated where one is expected"
            tree[name] = _element(child, child_schema)
    return tree


def xml_tree(body: bytes) -> dict[str, Any]:
    """An XML answer in the JSON answer's shape (typed by the schemas), under "subsonic-response"."""
    root = ET.fromstring(body)
    assert root.tag == NS + "subsonic-response", root.tag
    return {"subsonic-response": _element(root, RESPONSE["properties"]["subsonic-response"])}


def check_xml(body: bytes) -> dict[str, Any]:
    return check(xml_tree(body))
