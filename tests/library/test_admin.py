from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from apps.library.models import AudioFile, Library, LibraryAccess, LibraryKind, ScanJob
from apps.library.services import library_scan, scan_request
from tests.audio import make_audio
from tests.factories import LibraryFactory, UserFactory
from tests.pipeline import scan_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def add_library(admin_client, roots: str, **extra):
    data = {
        "name": "Music",
        "kind": "music",
        "root_paths": roots,
        "scan_interval_minutes": "",
        "accesses-TOTAL_FORMS": "0",
        "accesses-INITIAL_FORMS": "0",
        **extra,
    }
    return admin_client.post(reverse("admin:library_library_add"), data)


def test_root_paths_are_validated_and_nothing_is_saved_on_error(admin_client, tmp_path):
    a_file = tmp_path / "song.mp3"
    a_file.write_bytes(b"x")

    response = add_library(admin_client, f"{tmp_path}/nope\nrelative/path\n{a_file}")

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["root_paths"]
    assert errors == [
        f"{tmp_path}/nope: does not exist.",
        "relative/path: must be an absolute path (start with /).",
        f"{a_file}: is a file, not a folder.",
    ]
    assert Library.objects.count() == 0


def test_library_created_with_normalised_roots_and_grants(admin_client, tmp_path):
    listener = UserFactory()
    music = tmp_path / "music"
    music.mkdir()
    response = add_library(
        admin_client,
        f"{music}/\n{music}",
        **{"accesses-TOTAL_FORMS": "1", "accesses-0-user": str(listener.pk)},
    )

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    library = Library.objects.get()
    assert library.root_paths == [str(music)]
    assert LibraryAccess.objects.filter(library=library, user=listener).exists()


def test_scan_now_queues_a_job_and_links_to_it(admin_client, tmp_path, django_capture_on_commit_callbacks):
    (tmp_path / "music").mkdir()
    library = LibraryFactory(root=tmp_path / "music")

    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(
            reverse("admin:library_library_changelist"), {"action": "scan_now", "_selected_action": [library.pk]}
        )
    assert response.status_code == 302
    job = ScanJob.objects.get()
    assert len(callbacks) == 1
    message = str(next(iter(get_messages(response.wsgi_request))))
    assert f'href="/admin/library/scanjob/{job.pk}/change/"' in message and "queued" in message

    admin_client.post(
        reverse("admin:library_library_changelist"), {"action": "scan_now", "_selected_action": [library.pk]}
    )
    assert ScanJob.objects.count() == 1  # already queued: not twice


def test_admin_lists_do_not_grow_queries_with_rows(admin_client, tmp_path, django_assert_max_num_queries):
    pages = ["library", "track", "audiofile", "scanjob", "album"]
    make_audio(tmp_path / "one" / "a.mp3", seconds=1, tags={"album": "A", "genre": "Rock"})
    scan_job(LibraryFactory(root=tmp_path / "one", name="one"))
    counts = {}
    for page in pages:
        with django_assert_max_num_queries(30) as queries:
            assert admin_client.get(reverse(f"admin:library_{page}_changelist")).status_code == 200
        counts[page] = len(queries.captured_queries)

    for n in range(8):
        make_audio(tmp_path / f"lib{n}" / "x.mp3", seconds=1, tags={"album": f"B{n}", "genre": "Jazz"})
        (tmp_path / f"lib{n}" / "bad.mp3").write_bytes(b"")
        scan_job(LibraryFactory(root=tmp_path / f"lib{n}", name=f"lib{n}"))
    for page in pages:
        with django_assert_max_num_queries(counts[page]):
            response = admin_client.get(reverse(f"admin:library_{page}_changelist"))
        assert response.status_code == 200


def test_filters_on_track_and_file_lists(admin_client, tmp_path):
    media = tmp_path / "music"
    make_audio(media / "a.mp3", seconds=1, tags={"title": "Rocky", "genre": "Rock", "artist": "Stone"})
    make_audio(media / "b.mp3", seconds=1, tags={"title": "Smooth", "genre": "Jazz"})
    (media / "broken.mp3").write_bytes(b"")
    scan_job(LibraryFactory(root=media))
    tracks = reverse("admin:library_track_changelist")
    files = reverse("admin:library_audiofile_changelist")

    assert admin_client.get(tracks, {"genre": "Rock"}).context["cl"].result_count == 1
    assert admin_client.get(tracks, {"q": "Stone"}).context["cl"].result_count == 1
    assert admin_client.get(tracks, {"missing__exact": "1"}).context["cl"].result_count == 0
    assert admin_client.get(files, {"has_error": "yes"}).context["cl"].result_count == 1
    assert admin_client.get(files, {"has_error": "no"}).context["cl"].result_count == 2
    job_page = admin_client.get(reverse("admin:library_scanjob_change", args=[ScanJob.objects.get().pk]))
    assert "broken.mp3: empty file (0 bytes)" in job_page.content.decode()
    assert AudioFile.objects.count() == 3


def test_has_error_lists_a_book_with_one_unreadable_file_among_good_ones(admin_client, tmp_path):
    media = tmp_path / "books"
    make_audio(media / "Book" / "01.mp3", seconds=1, tags={"album": "Book"})
    make_audio(media / "Book" / "02.mp3", seconds=1)
    (media / "Book" / "03.mp3").write_bytes(b"not audio at all" * 100)
    make_audio(media / "Fine" / "01.mp3", seconds=1, tags={"album": "Fine"})
    library = LibraryFactory(name="books", kind=LibraryKind.AUDIOBOOK, root=media)
    library_scan(library=library)

    def listed(value: str) -> list[str]:
        page = admin_client.get(f"/admin/library/track/?has_error={value}")
        assert page.status_code == 200
        return sorted(track.title for track in page.context["cl"].result_list)

    assert listed("yes") == ["Book"]
    assert listed("no") == ["Fine"]


def test_dangerous_folders_are_refused_with_why_and_nothing_is_saved(admin_client, tmp_path):
    everything = tmp_path / "everything"
    everything.symlink_to("/")
    response = add_library(admin_client, f"/\n/etc\n/proc\n{everything}\n{tmp_path}")

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["root_paths"] == [
        "/: the whole system cannot be a library folder.",
        "/etc: a system folder cannot be a library folder.",
        "/proc: a system folder cannot be a library folder.",
        f"{everything} (which is /): the whole system cannot be a library folder.",
        f"{tmp_path}: overlaps the renditions folder (RENDITIONS_ROOT), which cannot be part of a library.",
    ]
    assert Library.objects.count() == 0


def test_a_library_may_not_be_moved_over_another_librarys_folder(admin_client, tmp_path):
    (tmp_path / "family" / "kids").mkdir(parents=True)
    (tmp_path / "mine").mkdir()
    LibraryFactory(root=tmp_path / "family", name="Family")
    mine = LibraryFactory(root=tmp_path / "mine", name="Mine")

    response = admin_client.post(
        reverse("admin:library_library_change", args=[mine.pk]),
        {
            "name": "Mine",
            "kind": "music",
            "root_paths": f"{tmp_path}/family/kids",
            "scan_interval_minutes": "",
            "accesses-TOTAL_FORMS": "0",
            "accesses-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["root_paths"] == [
        f"{tmp_path}/family/kids: overlaps a folder of the library “Family”; libraries may not share files."
    ]
    mine.refresh_from_db()
    assert mine.root_paths == [str(tmp_path / "mine")]


def test_library_form_has_no_raw_settings_box_and_says_which_folders_are_refused(admin_client):
    page = admin_client.get(reverse("admin:library_library_add"))

    form = page.context["adminform"].form
    assert list(form.fields) == ["name", "kind", "root_paths", "scan_interval_minutes"]
    assert 'name="settings"' not in page.content.decode()
    assert "may not be a system folder (/, /etc, /usr, /var/lib…)" in form.fields["root_paths"].help_text


def test_a_scan_job_page_is_titled_with_its_librarys_name(admin_client, tmp_path):
    (tmp_path / "music").mkdir()
    LibraryFactory(root=tmp_path / "other", name="Other")  # a library id that differs from the job's
    library = LibraryFactory(root=tmp_path / "music", name="Jazz")
    job, _ = scan_request(library=library, dispatch=False)

    page = admin_client.get(reverse("admin:library_scanjob_change", args=[job.pk]))

    assert page.status_code == 200
    assert f"<title>Scan #{job.pk} of Jazz (queued) | View scan job | Revenge</title>" in page.content.decode()
    assert str(job) == f"Scan #{job.pk} of Jazz (queued)"
