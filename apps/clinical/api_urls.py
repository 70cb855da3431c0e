from django.urls import path

from apps.clinical.api import StudyDetailApi, StudyListCreateApi

app_name = "clinical-api"

urlpatterns = [
    path("studies/", StudyListCreateApi.as_view(), name="study-list"),
    path("studies/<uuid:public_id>/", StudyDetailApi.as_view(), name="study-detail"),
]
