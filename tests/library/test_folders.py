"""Library folders that are refused: system folders, the server's own, a symlink to one, another library's.

One rule (apps.library.services.libraries) behind the model's validation, the admin form and every scan.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError

from apps.library.models import AudioFile, Library, ScanJob, ScanStatus
from apps.library.services import scan_claim, scan_request, scan_run
from tests.audio import make_audio
from tests.factories import LibraryFactory

pytestmark = pytest.mark.django_db


def refusal(root: str, library: Library | None = None) -> list[str]:
    library = library or Library(name="New", kind="music")
    library.root_paths = [root]
    with pytest.raises(ValidationError) as caught:
        library.full_clean()
    return caught.value.message_dict["root_paths"]


@pytest.mark.parametrize(
    ("root", "message"),
    [
        ("/", "/: the whole system cannot be a library folder."),
        ("/etc", "/etc: a system folder cannot be a library folder."),
        ("/proc", "/proc: a system folder cannot be a library folder."),
        ("/sys/class", "/sys/class: inside the system folder /sys, where no library may be."),
        ("/dev", "/dev: a system folder cannot be a library folder."),
        ("/usr/share", "/usr/share: inside the system folder /usr, where no library may be."),
        ("/boot", "/boot: a system folder cannot be a library folder."),
        ("/root", "/root: a system folder cannot be a library folder."),
        ("/var", "/var: contains the system folder /var/backups, which no library may read."),
    ],
)
def test_system_folders_are_refused(root: str, message: str):
    if not Path(root).is_dir():
        pytest.skip(f"{root} is not a folder here")
    assert refusal(root) == [message]
    assert Library.objects.count() == 0


def test_the_servers_own_folders_are_refused(tmp_path: Path):
    for folder in (settings.RENDITIONS_ROOT, settings.MEDIA_ROOT, settings.STATIC_ROOT):
        folder.mkdir(parents=True, exist_ok=True)
    data = Path(settings.DATA_DIR)
    assert refusal(str(data)) == [
        f"{data}: overlaps the server's data folder (REVENGE_DATA_DIR), which cannot be part of a library."
    ]
    assert refusal(str(settings.RENDITIONS_ROOT)) == [
        f"{settings.RENDITIONS_ROOT}: overlaps the renditions folder (RENDITIONS_ROOT), which cannot be part of a "
        "library."
    ]
    assert refusal(str(settings.MEDIA_ROOT)) == [
        f"{settings.MEDIA_ROOT}: overlaps the media folder (MEDIA_ROOT), which cannot be part of a library."
    ]
    # tmp_path holds the test's renditions, media and static folders: a folder around them is refused too.
    assert refusal(str(tmp_path)) == [
        f"{tmp_path}: overlaps the renditions folder (RENDITIONS_ROOT), which cannot be part of a library."
    ]
    code = Path(settings.BASE_DIR) / "apps"
    assert refusal(str(code)) == [f"{code}: overlaps the server's code, which cannot be part of a library."]
    assert Library.objects.count() == 0


def test_a_symlink_to_the_root_is_the_root(tmp_path: Path):
    link = tmp_path / "music"
    link.symlink_to("/")
    assert refusal(str(link)) == [f"{link} (which is /): the whole system cannot be a library folder."]
    etc = tmp_path / "books"
    etc.symlink_to("/etc")
    assert refusal(str(etc)) == [f"{etc} (which is /etc): a system folder cannot be a library folder."]
    assert Library.objects.count() == 0


def test_a_folder_inside_around_or_equal_to_another_librarys_is_refused_and_names_it(tmp_path: Path):
    shared = tmp_path / "shared" / "music"
    (shared / "rock").mkdir(parents=True)
    LibraryFactory(root=shared, name="Family music")
    expected = "overlaps a folder of the library “Family music”; libraries may not share files."
    assert refusal(str(shared)) == [f"{shared}: {expected}"]
    assert refusal(str(shared / "rock")) == [f"{shared / 'rock'}: {expected}"]
    assert refusal(str(shared.parent)) == [f"{shared.parent}: {expected}"]
    alias = tmp_path / "alias"
    alias.symlink_to(shared / "rock")
    assert refusal(str(alias)) == [f"{alias} (which is {shared / 'rock'}): {expected}"]
    assert list(Library.objects.values_list("name", flat=True)) == ["Family music"]


def test_two_folders_of_one_library_may_not_overlap(tmp_path: Path):
    music = tmp_path / "music"
    (music / "rock").mkdir(parents=True)
    library = Library(name="New", kind="music", root_paths=[str(music), str(music / "rock")])
    with pytest.raises(ValidationError) as caught:
        library.full_clean()
    assert caught.value.message_dict["root_paths"] == [
        f"{music / 'rock'}: overlaps {music}, another folder of this library (its files would count twice)."
    ]


def test_a_library_keeps_its_own_folders_and_a_sibling_folder_is_fine(tmp_path: Path):
    (tmp_path / "music").mkdir()
    (tmp_path / "books").mkdir()
    music = LibraryFactory(root=tmp_path / "music", name="Music")
    music.full_clean()  # its own folder is no overlap
    books = Library(name="Books", kind="audiobook", root_paths=[f"{tmp_path}/books/"])
    books.full_clean()
    assert books.root_paths == [str(tmp_path / "books")]


def _scan(library: Library) -> ScanJob:
    job, _ = scan_request(library=library, dispatch=False)
    return scan_run(job=scan_claim(job_id=job.pk))


def test_a_scan_refuses_a_library_saved_over_a_system_folder(tmp_path: Path):
    library = Library.objects.create(name="Everything", kind="music", root_paths=["/"])  # no validation
    job = _scan(library)
    assert job.status == ScanStatus.FAILED
    assert job.failure == "Refused: /: the whole system cannot be a library folder."
    assert job.seen == 0
    assert AudioFile.objects.count() == 0


def test_a_scan_refuses_a_symlink_swapped_to_another_librarys_folder(tmp_path: Path):
    private = tmp_path / "private"
    make_audio(private / "secret.mp3", seconds=1)
    LibraryFactory(root=private, name="Private")
    mine = tmp_path / "mine"
    make_audio(mine / "song.mp3", seconds=1)
    link = tmp_path / "link"
    link.symlink_to(mine)
    library = Library(name="Shared", kind="music", root_paths=[str(link)])
    library.full_clean()  # fine while the link leads to its own folder
    library.save()
    assert _scan(library).status == ScanStatus.SUCCEEDED
    assert list(AudioFile.objects.values_list("path", flat=True)) == ["song.mp3"]

    link.unlink()
    link.symlink_to(private)
    job = _scan(library)
    assert job.status == ScanStatus.FAILED
    assert job.failure == (
        f"Refused: {link} (which is {private}): overlaps a folder of the library “Private”; "
        "libraries may not share files."
    )
    assert list(AudioFile.objects.values_list("path", flat=True)) == ["song.mp3"]  # nothing of Private's
    assert AudioFile.objects.get().missing is False
