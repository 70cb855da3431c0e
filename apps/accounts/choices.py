from django.db import models


class Role(models.TextChoices):
    """Roles are Django Groups with these names. Order: highest first."""

    ADMIN = "admin", "Admin"
    SENIOR_RADIOLOGIST = "senior_radiologist", "Senior radiologist"
    ENGINEER = "engineer", "Engineer"
    RADIOLOGIST = "radiologist", "Radiologist"
    API_CLIENT = "api_client", "API client"
