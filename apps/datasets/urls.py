from django.urls import path

from apps.datasets import views

app_name = "datasets"

urlpatterns = [
    path("", views.dataset_list_view, name="list"),
    path("register/", views.dataset_register_view, name="register"),
    path("versions/<int:pk>/", views.dataset_version_view, name="version"),
    path("versions/<int:pk>/validate/", views.validation_run_start_view, name="validate"),
    path("versions/<int:pk>/profile/", views.profile_run_start_view, name="profile_start"),
    path("versions/<int:pk>/images/<str:key>/", views.image_view, name="image"),
    path("versions/<int:pk>/images/<str:key>/file/", views.image_file_view, name="image_file"),
    path("versions/<int:pk>/suspects/", views.suspect_list_view, name="suspects"),
    path("versions/<int:pk>/suspects/find/", views.suspect_find_view, name="suspects_find"),
    path(
        "versions/<int:pk>/suspects/<int:suspect_id>/decide/",
        views.suspect_decide_view,
        name="suspect_decide",
    ),
    path("versions/<int:pk>/correct/", views.dataset_version_correct_view, name="correct"),
    path(
        "versions/<int:pk>/annotations.zip", views.annotations_export_view, name="annotations_zip"
    ),
    path("runs/<int:pk>/", views.validation_run_view, name="run"),
    path("runs/<int:pk>/export.<str:fmt>", views.validation_run_export_view, name="run_export"),
    path("profiles/<int:pk>/", views.profile_run_view, name="profile"),
]
