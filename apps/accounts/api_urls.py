from django.urls import path

from apps.accounts.api import MeApi

app_name = "accounts-api"

urlpatterns = [path("me/", MeApi.as_view(), name="me")]
