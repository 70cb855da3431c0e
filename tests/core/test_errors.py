"""Domain errors carry no HTTP; the edges map them (one table), and pages escape them."""

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from django.urls import path
from rest_framework.exceptions import APIException
from rest_framework.permissions import AllowAny
from rest_framework.test import APIClient
from rest_framework.views import APIView

from apps.core import errors
from apps.core import exceptions as exceptions_module
from apps.core.error_pages import domain_error_fragment, domain_error_response
from apps.core.exceptions import DOMAIN_STATUS, domain_status
from mahtqa.urls import urlpatterns as root_patterns

MIDDLEWARE = "apps.core.error_pages.DomainErrorMiddleware"
XSS = '<script>alert("x")</script>'
XSS_ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"

# Every subclass and its exact status: this is the contract with API clients.
STATUSES = [
    (errors.DomainError, 400),
    (errors.InvalidInput, 400),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.PayloadTooLarge, 413),
    (errors.LengthRequired, 411),
    (errors.UnsupportedMediaType, 415),
]
KINDS = {cls.__name__: cls for cls, _ in STATUSES}


class _Specific(errors.Conflict):
    """A subclass of a subclass keeps its parent's status."""


class DomainApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request, kind):
        details = {"field": "x"} if request.GET.get("details") else None
        raise KINDS[kind](f"{kind.lower()}_code", f"{kind} happened.", details)


def plain_view(request, kind):
    raise KINDS[kind]("some_code", request.GET.get("message", "It went wrong."), {"a": 1})


def fine_view(request):
    return HttpResponse("ok")


urlpatterns = [
    path("api/test-errors/<str:kind>/", DomainApi.as_view()),
    path("api/test-plain/<str:kind>/", plain_view),
    path("test-errors/<str:kind>/", plain_view),
    path("test-fine/", fine_view),
    *root_patterns,
]

pytestmark = pytest.mark.urls("tests.core.test_errors")


@pytest.fixture
def api():
    return APIClient(raise_request_exception=False)


@pytest.fixture
def with_middleware():
    """The middleware as settings install it (added here if a settings edit is pending)."""
    middleware = list(settings.MIDDLEWARE)
    if MIDDLEWARE not in middleware:
        middleware.append(MIDDLEWARE)
    with override_settings(MIDDLEWARE=middleware):
        yield


# --- the domain errors themselves -------------------------------------------------


def test_domain_errors_carry_no_http():
    exc = errors.Conflict("claimed", "Another reviewer has claimed this case.", {"id": 3})
    assert (exc.code, exc.message, exc.details) == (
        "claimed", "Another reviewer has claimed this case.", {"id": 3},
    )  # fmt: skip
    assert str(exc) == "Another reviewer has claimed this case."
    assert not hasattr(exc, "status_code")
    assert not hasattr(exc, "status")
    assert errors.InvalidInput("c", "m").details == {}
    assert isinstance(exc, errors.DomainError)
    assert not issubclass(errors.DomainError, APIException)


def test_the_table_covers_every_subclass():
    subclasses = {c for c in vars(errors).values() if isinstance(c, type)}
    subclasses = {c for c in subclasses if issubclass(c, errors.DomainError)}
    assert subclasses == set(DOMAIN_STATUS) == {cls for cls, _ in STATUSES}


@pytest.mark.parametrize(("cls", "status"), STATUSES)
def test_domain_status(cls, status):
    assert domain_status(cls("code", "message")) == status


def test_a_subclass_of_a_subclass_inherits_the_status():
    assert domain_status(_Specific("x", "y")) == 409


# --- API edge ----------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "status"), STATUSES)
def test_api_maps_each_subclass_to_its_status_and_body(api, cls, status):
    kind = cls.__name__
    response = api.get(f"/api/test-errors/{kind}/")
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"code": f"{kind.lower()}_code", "message": f"{kind} happened."}
    response = api.get(f"/api/test-errors/{kind}/?details=1")
    assert response.status_code == status
    assert response.json() == {
        "code": f"{kind.lower()}_code", "message": f"{kind} happened.", "details": {"field": "x"},
    }  # fmt: skip


def test_request_data_too_big_is_the_one_413():
    response = exceptions_module.api_exception_handler(RequestDataTooBig(), {})
    assert response.status_code == 413
    assert response.data == {
        "code": "payload_too_large",
        "message": "The request body is too large.",
    }
    assert not hasattr(exceptions_module, "ApiError")
    assert not hasattr(exceptions_module, "PayloadTooLarge")  # the domain one is the only 413


def test_a_plain_view_under_api_answers_the_json_body(api, with_middleware):
    response = api.get("/api/test-plain/NotFound/")
    assert response.status_code == 404
    assert response.json() == {
        "code": "some_code",
        "message": "It went wrong.",
        "details": {"a": 1},
    }


# --- page edge ---------------------------------------------------------------------


def test_the_middleware_is_installed():
    assert MIDDLEWARE in settings.MIDDLEWARE


@pytest.mark.django_db
@pytest.mark.parametrize(("cls", "status"), STATUSES)
def test_page_maps_each_subclass_to_its_status(client, with_middleware, cls, status):
    response = client.get(f"/test-errors/{cls.__name__}/")
    assert response.status_code == status
    assert "text/html" in response["Content-Type"]
    html = response.content.decode()
    assert "<html" in html
    assert 'role="alert" data-code="some_code">It went wrong.</p>' in html


@pytest.mark.django_db
def test_htmx_gets_the_inline_fragment_with_the_status(client, with_middleware):
    response = client.get("/test-errors/Conflict/", HTTP_HX_REQUEST="true")
    assert response.status_code == 409
    assert response.content.decode().strip() == (
        '<p class="error" role="alert" data-code="some_code">It went wrong.</p>'
    )
    assert response["HX-Retarget"] == "#messages-inline"
    assert response["HX-Reswap"] == "innerHTML"
    assert "HX-Request" in response["Vary"]


@pytest.mark.django_db
def test_a_boosted_htmx_request_gets_the_whole_page(client, with_middleware):
    response = client.get("/test-errors/Forbidden/", HTTP_HX_REQUEST="true", HTTP_HX_BOOSTED="true")
    assert response.status_code == 403
    assert "<html" in response.content.decode()


@pytest.mark.django_db
def test_other_responses_are_untouched(client, with_middleware):
    assert client.get("/test-fine/").content == b"ok"


@pytest.mark.django_db
@pytest.mark.parametrize("htmx", [False, True])
def test_messages_are_escaped_on_pages(client, with_middleware, htmx):
    extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = client.get("/test-errors/InvalidInput/", {"message": XSS}, **extra)
    assert response.status_code == 400
    html = response.content.decode()
    assert "<script>alert" not in html
    assert XSS_ESCAPED in html


def _request(htmx: bool = False):
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django_htmx.middleware import HtmxDetails

    request = RequestFactory().post("/x/", HTTP_HX_REQUEST="true" if htmx else "")
    request.session = {}
    request._messages = FallbackStorage(request)
    request.htmx = HtmxDetails(request)
    return request


@pytest.mark.django_db
def test_helper_with_back_flashes_and_redirects():
    request = _request()
    response = domain_error_response(request, errors.Conflict("claimed", XSS), back="/queue/")
    assert response.status_code == 302
    assert response["Location"] == "/queue/"
    assert [m.message for m in get_messages(request)] == [XSS]  # escaped when base.html renders


@pytest.mark.django_db
def test_helper_with_back_still_answers_htmx_inline():
    request = _request(htmx=True)
    response = domain_error_response(
        request, errors.Forbidden("permission_denied", XSS), back="/q/"
    )
    assert response.status_code == 403
    assert XSS_ESCAPED in response.content.decode()
    assert "<script>" not in response.content.decode()


@pytest.mark.django_db
def test_fragment_is_escaped_and_has_the_status():
    response = domain_error_fragment(_request(), errors.UnsupportedMediaType('a"b', XSS))
    assert response.status_code == 415
    html = response.content.decode()
    assert 'data-code="a&quot;b"' in html
    assert XSS_ESCAPED in html
