from django.urls import path

from apps.datasets import api

app_name = "datasets-api"

urlpatterns = [
    path("datasets/", api.DatasetListApi.as_view(), name="list"),
    path("datasets/versions/<int:pk>/", api.DatasetVersionApi.as_view(), name="version"),
    path("datasets/versions/<int:pk>/validate/", api.ValidationStartApi.as_view(), name="validate"),
    path(
        "datasets/versions/<int:pk>/profile/", api.ProfileStartApi.as_view(), name="profile_start"
    ),
    path("datasets/versions/<int:pk>/suspects/", api.SuspectListApi.as_view(), name="suspects"),
    path(
        "datasets/versions/<int:pk>/suspects/<int:suspect_id>/decide/",
        api.SuspectDecideApi.as_view(),
        name="suspect_decide",
    ),
    path("datasets/versions/<int:pk>/correct/", api.CorrectApi.as_view(), name="correct"),
    path("datasets/runs/<int:pk>/", api.ValidationRunApi.as_view(), name="run"),
    path("datasets/runs/<int:pk>/findings/", api.FindingListApi.as_view(), name="findings"),
    path("datasets/profiles/<int:pk>/", api.ProfileRunApi.as_view(), name="profile"),
]
