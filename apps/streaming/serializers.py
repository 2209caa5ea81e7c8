from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import serializers

from apps.streaming.profiles import PROFILES

CLIENT_CODECS = ("mp3", "aac", "alac", "flac", "opus", "vorbis", "pcm")
# `?codecs=mp3,aac`: in OpenAPI terms a form-style array that is not exploded. It replaces the string
# parameter StreamInput would give, so the schema lists the codecs. At most 20 of them: any list the
# schema allows also fits StreamInput's 200 characters.
CODECS_PARAMETER = OpenApiParameter(
    "codecs",
    {"type": "array", "items": {"type": "string", "enum": list(CLIENT_CODECS)}, "minItems": 1, "maxItems": 20},
    style="form",
    explode=False,
    description="The codecs the client plays, comma-separated (case and spaces are ignored).",
)


@extend_schema_field({"type": "string", "enum": list(CLIENT_CODECS)})
class CodecField(serializers.CharField):
    """One codec a client plays; checked (and normalised) by client_codecs."""


class StreamInput(serializers.Serializer):
    codecs = serializers.CharField(
        required=False,
        max_length=200,
        help_text=f"Comma-separated codecs the client plays: {', '.join(CLIENT_CODECS)}.",
    )
    max_bitrate = serializers.IntegerField(
        required=False, min_value=16, max_value=100_000, help_text="The most the client wants, in kbps."
    )
    position_ms = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=10**12,
        help_text="Where the client will start playing: a long track not transcoded yet is made from there first.",
    )

    def validate_codecs(self, value: str) -> list[str]:
        return client_codecs(value.split(","))


def client_codecs(values: list[str]) -> list[str]:
    """The codecs a client says it plays, normalised; unknown ones are a validation error."""
    codecs = [c.strip().lower() for c in values if c.strip()]
    unknown = sorted(set(codecs) - set(CLIENT_CODECS))
    if unknown:
        raise serializers.ValidationError(f"Unknown codec(s): {', '.join(unknown)}. Known: {', '.join(CLIENT_CODECS)}.")
    if not codecs:
        raise serializers.ValidationError("List at least one codec.")
    return codecs


class StreamVariantOutput(serializers.Serializer):
    profile = serializers.CharField()
    codecs = serializers.CharField()
    bandwidth = serializers.IntegerField(help_text="Measured peak bit rate, bits/s.")
    average_bandwidth = serializers.IntegerField(help_text="Measured average bit rate, bits/s.")


class StreamFileOutput(serializers.Serializer):
    index = serializers.IntegerField()
    url = serializers.CharField()
    codec = serializers.CharField()
    bitrate_kbps = serializers.IntegerField(allow_null=True)
    duration_ms = serializers.IntegerField()
    size_bytes = serializers.IntegerField()


class StreamDecisionOutput(serializers.Serializer):
    mode = serializers.ChoiceField(choices=["direct", "hls"])
    url = serializers.CharField(help_text="Signed: opens without an Authorization header until it expires.")
    reason = serializers.CharField()
    ready = serializers.BooleanField(help_text="False: the renditions are being built; the master answers 202.")
    growing = serializers.BooleanField(
        help_text="Not ready, but playable now: the master is served while the renditions are being made."
    )
    variants = StreamVariantOutput(many=True)
    files = StreamFileOutput(many=True)


class DownloadInput(serializers.Serializer):
    profile = serializers.ChoiceField(choices=sorted(PROFILES), default="aac-128")


class NotReadyOutput(serializers.Serializer):
    status = serializers.CharField()
    retry_after_s = serializers.IntegerField()
    renditions = serializers.ListField(child=serializers.DictField())
