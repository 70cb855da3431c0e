"""The OpenAPI schema, generated once per process: it depends only on the code.

drf-spectacular walks every view on each request (about 2 s here); the schema for a
given API version and language is kept after the first request, so the API docs
page (Swagger UI fetches it) answers in milliseconds from then on.
"""

from __future__ import annotations

from django.utils import translation
from drf_spectacular.views import SpectacularAPIView
from rest_framework.response import Response

_SCHEMAS: dict[tuple[str, str], dict] = {}


class CachedSchemaView(SpectacularAPIView):
    def _get_schema_response(self, request):
        version = self.api_version or request.version or self._get_version_parameter(request)
        key = (str(version or ""), translation.get_language() or "")
        if key not in _SCHEMAS:
            response = super()._get_schema_response(request)
            _SCHEMAS[key] = response.data
            return response
        filename = self._get_filename(request, version)
        return Response(
            data=_SCHEMAS[key], headers={"Content-Disposition": f'inline; filename="{filename}"'}
        )


def schema_cache_clear() -> None:
    """Forget the generated schemas (tests that change the URLconf)."""
    _SCHEMAS.clear()
