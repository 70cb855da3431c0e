from django.urls import path

from apps.issues.api import IssueDetailApi, IssueListCreateApi, IssueSimilarApi

app_name = "issues-api"

urlpatterns = [
    path("issues/", IssueListCreateApi.as_view(), name="list"),
    path("issues/<int:pk>/", IssueDetailApi.as_view(), name="detail"),
    path("issues/<int:pk>/similar/", IssueSimilarApi.as_view(), name="similar"),
]
