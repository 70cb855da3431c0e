"""Model registry and lifecycle services."""

from apps.models.services.registry import (
    MANAGE_PERM,
    REGISTER_PERMS,
    manifest_read,
    model_version_activate,
    model_version_bundled_register,
    model_version_register,
    model_version_rollback,
)

__all__ = [
    "MANAGE_PERM",
    "REGISTER_PERMS",
    "manifest_read",
    "model_version_activate",
    "model_version_bundled_register",
    "model_version_register",
    "model_version_rollback",
]
