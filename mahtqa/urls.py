"""Root URLconf: each app's pages and API are included here."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework.authentication import SessionAuthentication

from apps.accounts.views import home
from apps.core.permissions import perm_required
from apps.core.schema import CachedSchemaView

# The Swagger page is an HTML page: session only (a token never opens a page), and
# split so its init script is a file (the CSP allows no inline script).
api_docs = perm_required(None)(
    SpectacularSwaggerSplitView.as_view(
        url_name="api-schema", authentication_classes=[SessionAuthentication]
    )
)

urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("accounts/", include("apps.accounts.urls")),
    path("models/", include("apps.models.urls")),
    path("issues/", include("apps.issues.urls")),
    path("datasets/", include("apps.datasets.urls")),
    path("clinical/", include("apps.clinical.urls")),
    path("", include("apps.monitoring.urls")),
    path("api/v1/", include("apps.accounts.api_urls")),
    path("api/v1/", include("apps.clinical.api_urls")),
    path("api/v1/", include("apps.issues.api_urls")),
    path("api/v1/", include("apps.datasets.api_urls")),
    path("api/v1/", include("apps.models.api_urls")),
    path("api/schema/", CachedSchemaView.as_view(), name="api-schema"),
    path("api/docs/", api_docs, name="api-docs"),
]

handler404 = "apps.core.views.handler404"
handler500 = "apps.core.views.handler500"
