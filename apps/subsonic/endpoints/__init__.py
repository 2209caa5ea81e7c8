"""The methods of /rest/, one module per section of the spec; importing this package registers them all."""

from apps.subsonic.endpoints import annotation, browsing, collections, lists, media, podcasts, system  # noqa: F401
