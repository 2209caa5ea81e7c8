"""A show's artwork from its feed image, an episode's own image, and who wins: images made with Pillow and
served by the real local HTTP server, stored by apps.library's artwork storage, sized by its task."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image

from apps.library.models import Album, Artwork, ArtworkStatus, Track
from apps.library.services.artwork import album_cover_upload, artwork_variants_build
from apps.library.services.scan import library_scan
from apps.podcasts.models import AutoDownload, FeedEpisode, Subscription
from apps.podcasts.services.artwork import FEED_KEY_PREFIX
from apps.podcasts.services.downloads import episode_download
from apps.podcasts.services.subscriptions import subscription_create, subscription_refresh
from tests.audio import make_audio
from tests.podcasts.feeds import items, rss
from tests.podcasts.server import Route
from tests.podcasts.tasks_run import drain


def image(color: str, fmt: str = "PNG", size: tuple[int, int] = (640, 640)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def tone(tmp_path: Path) -> bytes:
    return make_audio(tmp_path / "tone.mp3", seconds=2.0).read_bytes()


def serve(server, tone: bytes, *, feed: bytes, count: int = 2) -> None:
    server.routes["/feed.xml"] = Route(body=feed)
    for n in range(1, count + 1):
        server.routes[f"/audio/ep-{n}.mp3"] = Route(body=tone, content_type="audio/mpeg")


def refreshed(library, server, capture, **policy) -> Subscription:
    subscription = subscription_create(
        user=None, library=library, feed_url=server.url("/feed.xml"), refresh=False, **policy
    )
    with capture(execute=True):
        subscription_refresh(subscription_id=subscription.pk)
    drain(capture)  # the downloads the policy queued
    subscription.refresh_from_db()
    return subscription


def test_the_feed_image_becomes_the_shows_cover(podcast_library, feed_server, tone, media,
                                                django_capture_on_commit_callbacks):  # fmt: skip
    cover = image("red")
    feed_server.routes["/cover.png"] = Route(body=cover, content_type="image/png")
    serve(feed_server, tone, feed=rss("Show", items(feed_server.base, 2), image=feed_server.url("/cover.png")))
    subscription = refreshed(podcast_library, feed_server, django_capture_on_commit_callbacks,
                             auto_download=AutoDownload.NEWEST, auto_download_newest=2)  # fmt: skip
    assert (subscription.image_stored_url, subscription.image_error) == (feed_server.url("/cover.png"), "")
    assert (media / "Show" / "AlbumArt (feed).png").read_bytes() == cover
    artwork = Artwork.objects.get(hash=sha(cover))
    assert (artwork.mime, artwork.width, artwork.height, artwork.status) == ("image/png", 640, 640, "pending")
    tracks = list(Track.objects.filter(library=podcast_library).select_related("album"))
    assert len(tracks) == 2 and len({track.album_id for track in tracks}) == 1
    album = tracks[0].album
    assert (album.artwork_id, album.artwork_key) == (artwork.pk, f"{FEED_KEY_PREFIX}{artwork.hash}")
    # The artwork task makes its sizes; then every episode (no picture of its own) shows the show's cover.
    assert artwork_variants_build(artwork_id=artwork.pk) == ArtworkStatus.READY
    for track in Track.objects.filter(library=podcast_library).select_related("artwork", "album__artwork"):
        assert track.artwork_id is None and track.cover.pk == artwork.pk
    # The image was fetched once: a refresh with the same image URL does not fetch it again.
    feed_server.routes["/feed.xml"] = Route(
        body=rss("Show", items(feed_server.base, 3), image=feed_server.url("/cover.png"))
    )
    subscription_refresh(subscription_id=subscription.pk)
    assert feed_server.paths_hit().count("/cover.png") == 1
    # A full rescan comes to the same cover (the folder image the scanner ranks below cover.* and folder.*).
    library_scan(library=podcast_library)
    album.refresh_from_db()
    assert album.artwork_id == artwork.pk


def test_a_new_feed_image_replaces_the_old_one(podcast_library, feed_server, tone, media,
                                               django_capture_on_commit_callbacks):  # fmt: skip
    feed_server.routes["/a.png"] = Route(body=image("red"), content_type="image/png")
    feed_server.routes["/b.jpg"] = Route(body=image("blue", "JPEG"), content_type="image/jpeg")
    serve(feed_server, tone, feed=rss("Show", items(feed_server.base, 1), image=feed_server.url("/a.png")))
    subscription = refreshed(podcast_library, feed_server, django_capture_on_commit_callbacks,
                             auto_download=AutoDownload.NEWEST, auto_download_newest=1)  # fmt: skip
    feed_server.routes["/feed.xml"] = Route(
        body=rss("Show", items(feed_server.base, 1), image=feed_server.url("/b.jpg"))
    )
    subscription_refresh(subscription_id=subscription.pk)
    assert sorted(p.name for p in (media / "Show").iterdir() if not p.name.endswith(".mp3")) == ["AlbumArt (feed).jpg"]
    blue = Artwork.objects.get(hash=sha(image("blue", "JPEG")))
    assert Album.objects.get(tracks__library=podcast_library).artwork_id == blue.pk


def test_an_uploaded_or_a_folder_cover_wins(podcast_library, feed_server, tone, media,
                                            django_capture_on_commit_callbacks):  # fmt: skip
    feed_server.routes["/cover.png"] = Route(body=image("red"), content_type="image/png")
    serve(feed_server, tone, feed=rss("Show", items(feed_server.base, 2), image=feed_server.url("/cover.png")))
    subscription = refreshed(podcast_library, feed_server, django_capture_on_commit_callbacks,
                             auto_download=AutoDownload.NEWEST, auto_download_newest=1)  # fmt: skip
    album = Album.objects.get(tracks__library=podcast_library)
    # Its first download made the album, which took the feed's image at once.
    assert album.artwork_id == Artwork.objects.get(hash=sha(image("red"))).pk
    # An admin's upload: a later download (show_cover_apply again) does not replace it.
    uploaded = album_cover_upload(album=album, data=image("green"))
    with django_capture_on_commit_callbacks(execute=True):
        FeedEpisode.objects.filter(key="ep-1").update(state="queued")
        assert episode_download(episode_id=FeedEpisode.objects.get(key="ep-1").pk).state == "downloaded"
    album.refresh_from_db()
    assert album.artwork_id == uploaded.pk
    # A cover.jpg put next to the episodes: the scanner ranks it above the feed's image, and so does a refresh.
    Album.objects.filter(pk=album.pk).update(artwork_key="", artwork_id=None)
    (media / "Show" / "cover.jpg").write_bytes(image("yellow", "JPEG"))
    library_scan(library=podcast_library)
    yellow = Artwork.objects.get(hash=sha(image("yellow", "JPEG")))
    album.refresh_from_db()
    assert album.artwork_id == yellow.pk
    feed_server.routes["/new.png"] = Route(body=image("black"), content_type="image/png")
    feed_server.routes["/feed.xml"] = Route(
        body=rss("Show", items(feed_server.base, 2), image=feed_server.url("/new.png"))
    )
    subscription_refresh(subscription_id=subscription.pk)
    album.refresh_from_db()
    assert album.artwork_id == yellow.pk
    assert (media / "Show" / "AlbumArt (feed).png").read_bytes() == image("black")  # stored, ranked below


@pytest.mark.parametrize(
    ("route", "error"),
    [
        (
            Route(body=b"<html>not an image</html>", content_type="text/html"),
            "not an image (neither JPEG, PNG nor WebP)",
        ),
        (Route(status=404), "HTTP 404"),
        (
            Route(body=image("red")[:200], content_type="image/png"),
            "corrupt or truncated PNG (image file is truncated)",
        ),
    ],
)
def test_a_bad_feed_image_is_reported_and_changes_nothing(podcast_library, feed_server, tone, media, route, error,
                                                          django_capture_on_commit_callbacks):  # fmt: skip
    feed_server.routes["/cover.png"] = route
    serve(feed_server, tone, feed=rss("Show", items(feed_server.base, 1), image=feed_server.url("/cover.png")))
    subscription = refreshed(podcast_library, feed_server, django_capture_on_commit_callbacks,
                             auto_download=AutoDownload.NEWEST, auto_download_newest=1)  # fmt: skip
    assert subscription.last_error == "" and subscription.failures == 0  # the refresh itself succeeded
    assert subscription.image_stored_url == ""
    assert subscription.image_error == f"{feed_server.url('/cover.png')}: {error}"
    assert Artwork.objects.count() == 0
    assert [p.name for p in (media / "Show").iterdir() if not p.name.endswith(".mp3")] == []
    assert Album.objects.get(tracks__library=podcast_library).artwork_id is None


def test_an_episode_image_is_its_tracks_picture(podcast_library, feed_server, tone, media,
                                                django_capture_on_commit_callbacks):  # fmt: skip
    show, own = image("red"), image("purple", "JPEG", (300, 300))
    feed_server.routes["/show.png"] = Route(body=show, content_type="image/png")
    feed_server.routes["/ep2.jpg"] = Route(body=own, content_type="image/jpeg")
    feed = rss("Show", items(feed_server.base, 2), image=feed_server.url("/show.png"))
    own_tag = f'<itunes:image href="{feed_server.url("/ep2.jpg")}"/>'.encode()
    feed = feed.replace(b'<guid isPermaLink="false">ep-2</guid>', b'<guid isPermaLink="false">ep-2</guid>' + own_tag)
    serve(feed_server, tone, feed=feed)
    refreshed(podcast_library, feed_server, django_capture_on_commit_callbacks,
              auto_download=AutoDownload.NEWEST, auto_download_newest=2)  # fmt: skip
    show_art, own_art = Artwork.objects.get(hash=sha(show)), Artwork.objects.get(hash=sha(own))
    for artwork in (show_art, own_art):
        artwork_variants_build(artwork_id=artwork.pk)
    episodes = {e.key: e for e in FeedEpisode.objects.select_related("track__artwork", "track__album__artwork")}
    assert episodes["ep-2"].track.artwork_id == own_art.pk and episodes["ep-2"].track.cover.pk == own_art.pk
    assert episodes["ep-1"].track.artwork_id is None and episodes["ep-1"].track.cover.pk == show_art.pk
    # A rescan keeps the episode's picture (it sits on the file, which did not change).
    library_scan(library=podcast_library)
    assert Track.objects.get(pk=episodes["ep-2"].track_id).artwork_id == own_art.pk


def test_a_folder_that_cannot_be_written_leaves_the_refresh_alone(podcast_library, feed_server, tone, media,
                                                                   django_capture_on_commit_callbacks):  # fmt: skip
    feed_server.routes["/cover.png"] = Route(body=image("red"), content_type="image/png")
    serve(feed_server, tone, feed=rss("Show", items(feed_server.base, 1), image=feed_server.url("/cover.png")))
    (media / "Show").write_bytes(b"a file where the show's folder would go")
    subscription = refreshed(podcast_library, feed_server, django_capture_on_commit_callbacks,
                             auto_download=AutoDownload.NONE)  # fmt: skip
    assert (subscription.title, subscription.failures, subscription.episodes.count()) == ("Show", 0, 1)
    assert subscription.image_stored_url == ""
    assert subscription.image_error.startswith(feed_server.url("/cover.png") + ": [Errno 17] File exists")
