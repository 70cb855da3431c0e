from django.db import models


class Role(models.TextChoices):
    """Roles are Django Groups with these names. Order: highest first."""

    ADMIN = "admin", "Admin"
    SENIOR_RADIOLOGIST = "senior_radiologist", "Senior radiologist"
    ENGINEER = "engineer", "Engineer"
    RADIOLOGIST = "radiologist", "Radiologist"
    API_CLIENT = "api_client", "API client"


class SecurityEventKind(models.TextChoices):
    LOGIN_FAILED = "login_failed", "Failed password login"
    LOCKED_OUT = "locked_out", "Locked out after repeated failures"
    UNLOCKED = "unlocked", "Lockout cleared by an admin"
    TOKEN_FAILED = "token_failed", "Failed API token authentication"
    TOKEN_THROTTLED = "token_throttled", "API token failures rate-limited"
    PASSWORD_REFUSED = "password_refused", "Password refused for an API client"
