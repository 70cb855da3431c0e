import pytest
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from django.urls import path
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from apps.core.errors import Conflict
from mahtqa.urls import urlpatterns as root_patterns


class _Input(serializers.Serializer):
    age = serializers.IntegerField(min_value=0)


class _Never(BaseThrottle):
    def allow_request(self, request, view):
        return False

    def wait(self):
        return 30


RAISES = {
    "domain-error": Conflict("study_not_ready", "Study is still processing.", {"id": 3}),
    "django-404": Http404("gone"),
    "django-403": DjangoPermissionDenied(),
    "too-big": RequestDataTooBig(),
    "boom": RuntimeError("secret detail"),
}


class ErrorView(APIView):
    permission_classes = [AllowAny]

    def get(self, request, kind):
        raise RAISES[kind]

    def post(self, request, kind):
        _Input(data=request.data).is_valid(raise_exception=True)
        return Response({"ok": True})


class ThrottledView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [_Never]

    def get(self, request):
        return Response({})


class AuthView(APIView):
    def get(self, request):
        raise exceptions.PermissionDenied()


urlpatterns = [
    path("api/test/throttled/", ThrottledView.as_view()),
    path("api/test/auth/", AuthView.as_view()),
    path("api/test/<str:kind>/", ErrorView.as_view()),
    *root_patterns,
]
handler404 = "apps.core.views.handler404"
handler500 = "apps.core.views.handler500"

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.core.test_exceptions")]


@pytest.fixture
def api():
    return APIClient(raise_request_exception=False)


def test_validation_error_has_field_details(api):
    response = api.post("/api/test/x/", {"age": -1}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["message"] == "Invalid input."
    assert "age" in body["details"]["fields"]


def test_domain_error_keeps_code_status_details(api):
    response = api.get("/api/test/domain-error/")
    assert response.status_code == 409
    assert response.json() == {
        "code": "study_not_ready", "message": "Study is still processing.", "details": {"id": 3},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [("django-404", 404, "not_found"), ("django-403", 403, "permission_denied"),
     ("too-big", 413, "payload_too_large")],
)  # fmt: skip
def test_django_exceptions_are_mapped(api, kind, status, code):
    response = api.get(f"/api/test/{kind}/")
    assert response.status_code == status
    assert response.json()["code"] == code


def test_parse_error(api):
    response = api.post("/api/test/x/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_unsupported_media_type(api):
    response = api.post("/api/test/x/", "a,b", content_type="text/csv")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_method_not_allowed(api):
    response = api.delete("/api/test/x/")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_throttled_has_wait(api):
    response = api.get("/api/test/throttled/")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert response.json()["details"]["wait_seconds"] == 30
    assert response["Retry-After"] == "30"


def test_permission_denied_for_signed_in_user(api, make_user):
    api.force_authenticate(make_user(None))
    response = api.get("/api/test/auth/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_not_authenticated(api):
    response = api.get("/api/test/auth/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_unknown_api_url_is_json_404(api):
    response = api.get("/api/nothing-here/")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found."}


def test_unexpected_error_is_json_500_without_detail(api):
    response = api.get("/api/test/boom/")
    assert response.status_code == 500
    assert response.json()["code"] == "server_error"
    assert b"secret detail" not in response.content


def test_html_404_stays_html(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "application/json" not in response["Content-Type"]
