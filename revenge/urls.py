from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.accounts import views as accounts_views
from apps.library import views as library_views
from apps.ops import views as ops_views
from apps.streaming import views as streaming_views
from apps.subsonic import views as subsonic_views

admin.site.site_header = "Revenge administration"
admin.site.site_title = "Revenge"

api_v1: list[URLPattern | URLResolver] = [
    path("", include("apps.accounts.urls")),
    path("", include("apps.library.urls")),
    path("", include("apps.streaming.urls")),
    path("", include("apps.playback.urls")),
    path("", include("apps.podcasts.urls")),
    path("", include("apps.collections.urls")),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
]

urlpatterns = [
    path("", include("apps.web.urls")),
    path("healthz", ops_views.healthz, name="healthz"),
    path("readyz", ops_views.readyz, name="readyz"),
    path("metrics", ops_views.metrics, name="metrics"),
    # Before admin.site.urls: the admin's sign-in shares the API's and the web player's throttle.
    path("admin/login/", accounts_views.admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    re_path(r"^hls/", streaming_views.hls_file, name="hls"),
    re_path(r"^art/", library_views.art_file, name="art"),
    # The OpenSubsonic API: /rest/<method> and /rest/<method>.view (apps and DSub-era clients add .view).
    re_path(r"^rest/(?P<method>[^/]+?)(?:\.view)?/?$", subsonic_views.rest, name="subsonic"),
]

handler400 = "apps.ops.errors.bad_request"
handler403 = "apps.ops.errors.permission_denied"
handler404 = "apps.ops.errors.page_not_found"
handler500 = "apps.ops.errors.server_error"
