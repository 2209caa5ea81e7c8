from rest_framework import serializers

from apps.collections.models import RATING_MAX, RATING_MIN


class MarkOutput(serializers.Serializer):
    favourite_at = serializers.DateTimeField(allow_null=True, help_text="When you starred it; null: not starred.")
    rating = serializers.IntegerField(allow_null=True, help_text="Your rating, 1–5; null: not rated.")


class RatingInput(serializers.Serializer):
    rating = serializers.IntegerField(
        min_value=RATING_MIN, max_value=RATING_MAX, allow_null=True, help_text="1–5, or null to clear it."
    )


class ArtistMarkOutput(MarkOutput):
    name = serializers.CharField()
