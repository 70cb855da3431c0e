"""Root URLconf. Apps add their own include() here (clinical: the next one)."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.accounts.views import home

urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("accounts/", include("apps.accounts.urls")),
    path("models/", include("apps.models.urls")),
    path("issues/", include("apps.issues.urls")),
    path("clinical/", include("apps.clinical.urls")),
    path("", include("apps.monitoring.urls")),
    path("api/v1/", include("apps.accounts.api_urls")),
    path("api/v1/", include("apps.clinical.api_urls")),
    path("api/v1/", include("apps.issues.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

handler404 = "apps.core.views.handler404"
handler500 = "apps.core.views.handler500"
