"""The web player's search results page. The search box in the header (static/web/js/search.js) shows the
first matches while typing through GET /api/v1/search; Enter (or no script) opens this page, which reads
through the same selector, apps.library.selectors.search."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.library import selectors as library_selectors
from apps.library.search import SearchTermInvalid, search_term
from apps.web.views import web_page

RESULTS_PER_KIND = 25


@web_page
def search(request: HttpRequest) -> HttpResponse:
    raw = request.GET.get("q", "")
    results = None
    error = ""
    if raw.strip():
        try:
            term = search_term(raw)
        except SearchTermInvalid as exc:
            error = str(exc)
        else:
            results = library_selectors.search(user=request.user, term=term, limit=RESULTS_PER_KIND)
    tracks = [*results.tracks, *results.episodes, *results.books] if results else []
    return render(
        request,
        "web/search.html",
        {
            "q": raw,
            "error": error,
            "results": results,
            "queue_ids": ",".join(str(track.pk) for track in tracks),
            "empty": results is not None and not (tracks or results.artists or results.albums or results.shows),
        },
    )
