"""The web player's podcast pages: shows, a show's episodes (newest first, notes as sanitised HTML, download
state), subscribe, refresh now and download now. Reads through apps.podcasts.selectors, writes through its
services; a form post answers with a redirect (no script needed)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from apps.ops.errors import DomainError
from apps.podcasts import selectors
from apps.podcasts.access import manageable_libraries, may_manage
from apps.podcasts.html import description_html
from apps.podcasts.services.downloads import episodes_download_request
from apps.podcasts.services.subscriptions import subscription_create, subscription_refresh_now

PAGE_SIZE = 50


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # login_required
    return request.user


@login_required
@require_GET
@ensure_csrf_cookie
def podcast_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "web/podcasts.html",
        {
            "subscriptions": selectors.subscription_list(user=request.user),
            "libraries": manageable_libraries(request.user),
            "new_episodes": list(selectors.episodes_new(user=request.user).select_related("subscription")[:12]),
        },
    )


@login_required
@require_POST
def podcast_subscribe(request: HttpRequest) -> HttpResponse:
    library = manageable_libraries(request.user).filter(pk=request.POST.get("library") or 0).first()
    if library is None:
        raise Http404
    try:
        subscription = subscription_create(
            user=_user(request), library=library, feed_url=request.POST.get("feed_url", "")
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("web:podcast-list")
    messages.success(request, "Subscribed. The episodes appear as soon as the feed has been read.")
    return redirect("web:podcast-detail", subscription.pk)


@login_required
@require_GET
@ensure_csrf_cookie
def podcast_detail(request: HttpRequest, subscription_id: int) -> HttpResponse:
    subscription = selectors.subscription_get(user=request.user, subscription_id=subscription_id)
    page = Paginator(selectors.episode_list(user=request.user, subscription=subscription), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    listened = selectors.episodes_listened(user=request.user, episodes=page.object_list)
    rows = [
        {
            "episode": episode,
            "notes": mark_safe(description_html(episode.description)),  # sanitised by nh3
            "played": episode.track_id is not None and listened.get(episode.track_id, (False, False))[0],
        }
        for episode in page.object_list
    ]
    return render(
        request,
        "web/podcast.html",
        {
            "subscription": subscription,
            "show_cover": selectors.subscription_cover(subscription=subscription),
            "notes": mark_safe(description_html(subscription.description)),  # sanitised by nh3
            "rows": rows,
            "page": page,
            "page_query": "",
            "can_manage": may_manage(request.user, subscription.library),
        },
    )


@login_required
@require_POST
def podcast_refresh(request: HttpRequest, subscription_id: int) -> HttpResponse:
    subscription = selectors.subscription_get(user=request.user, subscription_id=subscription_id)
    try:
        subscription_refresh_now(user=_user(request), subscription=subscription)
    except DomainError:
        raise Http404 from None
    messages.success(request, "Refresh queued.")
    return redirect("web:podcast-detail", subscription.pk)


@login_required
@require_POST
def episode_download(request: HttpRequest, episode_id: int) -> HttpResponse:
    episode = selectors.episode_get(user=request.user, episode_id=episode_id)
    if not may_manage(request.user, episode.subscription.library):
        raise Http404
    episodes_download_request(episode_ids=[episode.pk])
    return redirect("web:podcast-detail", episode.subscription_id)
