from django.urls import path

from apps.models import views

app_name = "models"

urlpatterns = [
    path("", views.model_version_list_view, name="list"),
    path("<int:pk>/activate/", views.model_version_activate_view, name="activate"),
    path("rollback/", views.model_version_rollback_view, name="rollback"),
]
