"""System: ping, getLicense, getOpenSubsonicExtensions, tokenInfo, getUser."""

from __future__ import annotations

from typing import Any

from apps.library.models import Library
from apps.podcasts.access import manageable_libraries
from apps.subsonic.registry import Call, endpoint
from apps.subsonic.response import ErrorCode, SubsonicError

# Exactly what is implemented (https://opensubsonic.netlify.app/docs/extensions/): each name with the
# versions of it we speak.
EXTENSIONS: dict[str, list[int]] = {
    "apiKeyAuthentication": [1],
    "formPost": [1],
    "transcodeOffset": [1],
    "indexBasedQueue": [1],
    "songLyrics": [1],
    "getPodcastEpisode": [1],
}


@endpoint("ping")
def ping(call: Call) -> dict[str, Any]:
    return {}


@endpoint("getLicense")
def get_license(call: Call) -> dict[str, Any]:
    return {"license": {"valid": True}}


@endpoint("getOpenSubsonicExtensions", auth=False)
def get_open_subsonic_extensions(call: Call) -> dict[str, Any]:
    return {"openSubsonicExtensions": [{"name": name, "versions": versions} for name, versions in EXTENSIONS.items()]}


@endpoint("tokenInfo")
def token_info(call: Call) -> dict[str, Any]:
    return {"tokenInfo": {"username": call.user.get_username()}}


@endpoint("getUser")
def get_user(call: Call) -> dict[str, Any]:
    username = call.params.get("username")
    if username is not None and username != call.user.get_username():
        # Only your own: other users' rights are an admin's business (the admin site).
        raise SubsonicError(ErrorCode.NOT_AUTHORIZED, "You may only read your own user.")
    user = call.user
    folders = list(Library.objects.visible_to(user).order_by("pk").values_list("pk", flat=True))
    return {
        "user": {
            "username": user.get_username(),
            "email": user.email or None,
            "scrobblingEnabled": True,
            "adminRole": user.is_staff,
            "settingsRole": False,
            "downloadRole": True,
            "uploadRole": False,
            "playlistRole": True,
            "coverArtRole": False,
            "commentRole": False,
            "podcastRole": manageable_libraries(user).exists(),
            "streamRole": True,
            "jukeboxRole": False,
            "shareRole": False,
            "videoConversionRole": False,
            "folder": folders,
        }
    }
