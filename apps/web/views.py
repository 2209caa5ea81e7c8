"""The web player's pages: server-rendered, thin, every read through a selector scoped by the user's grants.

Everything on a page the user may not see answers 404 (never 403), as the API does. Playing, progress,
sessions, bookmarks and the queue go from the browser to the API (static/web/js/player.js); the pages
only carry track ids in data-* attributes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET
from django_filters import FilterSet

from apps.accounts.throttling import sign_in_wait_s
from apps.library import selectors as library_selectors
from apps.library.filters import AlbumFilter, TrackFilter
from apps.library.models import LibraryKind
from apps.playback import selectors as playback_selectors
from apps.web import selectors

PAGE_SIZE = 50
HOME_ROWS = 12


def web_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A signed-in page whose scripts call the API: they need the CSRF cookie even on a first GET."""
    return login_required(require_GET(ensure_csrf_cookie(view)))


def _paginate(request: HttpRequest, rows: Any) -> Page:
    return Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))


def _query_without_page(request: HttpRequest) -> str:
    """The current filters, for the pagination links."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def _filtered(filterset: FilterSet) -> tuple[Any, dict[str, list[str]]]:
    """The filtered rows and the errors of the filters that were ignored (a bad value filters nothing,
    like an unknown one: the page stays usable instead of failing)."""
    rows = filterset.qs
    return rows, {name: [str(message) for message in messages] for name, messages in filterset.errors.items()}


class SignInView(auth_views.LoginView):
    template_name = "web/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        wait_s = sign_in_wait_s(request)
        if wait_s is not None:  # the budget is shared with the API and the admin (accounts.throttling)
            form = self.get_form()
            form.add_error(None, f"Too many sign-in attempts from your address. Try again in {wait_s} s.")
            response = self.render_to_response(self.get_context_data(form=form))
            response.status_code = 429
            response["Retry-After"] = str(wait_s)
            return response
        return super().post(request, *args, **kwargs)


class SignOutView(auth_views.LogoutView):
    """POST only (Django's own rule): a link or an image on another site cannot sign anyone out."""


@web_page
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    return render(
        request,
        "web/home.html",
        {
            "continue_rows": selectors.continue_listening(user=user, limit=HOME_ROWS),
            "recent_items": selectors.recently_added(user=user, limit=HOME_ROWS),
        },
    )


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """What a browser asks for when a response names no icon (JSON opened in a tab): the pages' own icon.
    Not permanent: the target is a hashed static URL that changes with the icon."""
    response = redirect(static("web/favicon.svg"))
    response["Cache-Control"] = "public, max-age=86400"
    return response


@web_page
def library_list(request: HttpRequest) -> HttpResponse:
    return render(request, "web/libraries.html", {"libraries": library_selectors.library_list(user=request.user)})


@web_page
def library_detail(request: HttpRequest, library_id: int) -> HttpResponse:
    """Music: its albums. Audiobooks: its books, each series together. Podcasts: its shows, then its
    episodes newest first. Books and episodes come with the user's progress."""
    user = request.user
    library = library_selectors.library_get(user=user, library_id=library_id)
    context: dict[str, Any] = {"library": library}
    if library.kind == LibraryKind.AUDIOBOOK:
        page = _paginate(request, selectors.library_books(user=user, library=library))
        context.update(page=page, rows=selectors.item_rows(user=user, tracks=page))
    elif library.kind == LibraryKind.PODCAST:
        page = _paginate(request, selectors.library_episodes(user=user, library=library))
        shows = selectors.library_shows(user=user, library=library) if page.number == 1 else []
        context.update(page=page, rows=selectors.item_rows(user=user, tracks=page), shows=shows)
    else:
        context["page"] = _paginate(request, selectors.library_albums(user=user, library=library))
    return render(request, "web/library.html", context)


@web_page
def album_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    queryset = library_selectors.album_list(user=user).order_by("title", "album_artist", "id")
    rows, errors = _filtered(AlbumFilter(request.GET, queryset=queryset))
    return render(
        request,
        "web/albums.html",
        {
            "albums": _paginate(request, rows),
            "filter_errors": errors,
            "libraries": selectors.library_options(user=user),
            "query": request.GET,
            "page_query": _query_without_page(request),
        },
    )


@web_page
def album_detail(request: HttpRequest, album_id: int) -> HttpResponse:
    """A music album disc by disc, a book series, or a podcast show: its author, then its episodes newest
    first, each with its publish date, a short description and the user's progress (as in a library)."""
    album = library_selectors.album_get(user=request.user, album_id=album_id)
    tracks = list(album.tracks.all())
    is_show = album.library.kind == LibraryKind.PODCAST
    return render(
        request,
        "web/album.html",
        {
            "album": album,
            "tracks": tracks,
            "discs": _discs(tracks),
            "rows": selectors.item_rows(user=request.user, tracks=tracks) if is_show else [],
            "guests": [name for name in album.artists if name not in album.album_artists],
            "queue_ids": ",".join(str(track.pk) for track in tracks),
            "is_books": album.library.kind == LibraryKind.AUDIOBOOK,
            "is_show": is_show,
        },
    )


def _discs(tracks: list[Any]) -> list[dict[str, Any]]:
    """The album's tracks disc by disc (they come in disc order): a header per disc is shown when there
    are several, or when a disc has a subtitle."""
    discs: list[dict[str, Any]] = []
    for track in tracks:
        if not discs or discs[-1]["number"] != track.disc_number:
            discs.append({"number": track.disc_number, "subtitle": "", "tracks": []})
        discs[-1]["tracks"].append(track)
        discs[-1]["subtitle"] = discs[-1]["subtitle"] or track.disc_subtitle
    if len(discs) == 1 and not discs[0]["subtitle"]:
        return []
    return discs


@web_page
def artist_detail(request: HttpRequest, name: str) -> HttpResponse:
    """An artist's albums, and the albums they appear on (compilations, guest tracks)."""
    own, appears_on = library_selectors.artist_albums(user=request.user, name=name)
    # Tracks without an album tag belong to no album: their artist's page still exists, with its tracks link.
    if not own and not appears_on and not selectors.artist_has_tracks(user=request.user, name=name):
        raise Http404("No such artist.")
    return render(request, "web/artist.html", {"name": name, "albums": own, "appears_on": appears_on})


@web_page
def track_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    queryset = library_selectors.track_list(user=user).order_by("title", "id")
    rows, errors = _filtered(TrackFilter(request.GET, queryset=queryset))
    tracks = _paginate(request, rows)
    return render(
        request,
        "web/tracks.html",
        {
            "tracks": tracks,
            "queue_ids": ",".join(str(track.pk) for track in tracks),
            "filter_errors": errors,
            "libraries": selectors.library_options(user=user),
            "genres": selectors.genre_options(user=user),
            "query": request.GET,
            "page_query": _query_without_page(request),
        },
    )


@web_page
def track_detail(request: HttpRequest, track_id: int) -> HttpResponse:
    track = library_selectors.track_get(user=request.user, track_id=track_id)
    _target, progress = playback_selectors.progress_get(user=request.user, track_id=track.pk)
    return render(
        request,
        "web/track.html",
        {
            "track": track,
            "library": track.library,
            "chapters": list(track.chapters.all()),
            "files": list(track.files.all()),
            "progress": progress,
        },
    )


@web_page
def history(request: HttpRequest) -> HttpResponse:
    listens = _paginate(request, playback_selectors.listen_list(user=request.user))
    return render(request, "web/history.html", {"listens": listens, "page_query": _query_without_page(request)})
