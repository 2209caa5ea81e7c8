from __future__ import annotations

from typing import Any

from rest_framework import pagination, serializers
from rest_framework.request import Request

MAX_PAGE_SIZE = 500


class PageInput(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, required=False)
    page_size = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, required=False)


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=N&page_size=M` (M ≤ 500); answers `{count, next, previous, results}`.

    A bad `page` or `page_size` (`abc`, empty, 0, above the maximum) is a 400 naming the parameter, like any
    other bad parameter: DRF's own class answers 404 for `page=abc` and quietly uses the default size for
    `page_size=abc`, so a client's typo looked like an empty or a short list. A page past the last is 404.
    """

    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    last_page_strings = ()  # `page=last` would contradict the documented integer

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list | None:
        PageInput(data=request.query_params).is_valid(raise_exception=True)
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        limits = {"page": {"minimum": 1}, "page_size": {"minimum": 1, "maximum": MAX_PAGE_SIZE}}
        for parameter in parameters:
            parameter["schema"].update(limits.get(parameter["name"], {}))
        return parameters
