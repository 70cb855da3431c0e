"""Writes for the model registry."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.errors import Conflict, InvalidInput
from apps.models.files import sha256_file, weights_path_resolve
from apps.models.models import ModelVersion
from apps.models.selectors import model_version_active, model_version_previous

MANAGE_PERM = "accounts.manage_models"
REGISTER_PERMS = ("accounts.register_model", "accounts.manage_models")


def manifest_read(*, weights_file: Path) -> dict:
    """The ``<weights stem>.json`` beside the weights, or {} when absent."""
    manifest_file = weights_file.with_suffix(".json")
    if not manifest_file.is_file():
        return {}
    try:
        # NaN / Infinity (e.g. an AUROC of a tiny smoke run) are not JSON: stored as null
        data = json.loads(manifest_file.read_text(), parse_constant=lambda _: None)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            "invalid_manifest", f"Manifest {manifest_file.name} is not valid JSON: {exc}"
        ) from exc
    if not isinstance(data, dict):
        raise InvalidInput(
            "invalid_manifest", f"Manifest {manifest_file.name} must be a JSON object."
        )
    return data


def _trained_on(manifest: dict):
    """The dataset version the manifest names (id and content hash must both match)."""
    from apps.datasets.selectors import dataset_version_trained_on

    return dataset_version_trained_on(info=(manifest.get("data") or {}).get("dataset_version"))


def model_version_register(
    *, name: str, version: str, weights_path: str | Path, registered_by=None
) -> ModelVersion:
    if registered_by is not None and not any(registered_by.has_perm(p) for p in REGISTER_PERMS):
        raise PermissionDenied("Registering models needs the register_model permission.")
    weights_file = weights_path_resolve(weights_path)
    if not weights_file.is_file():
        raise InvalidInput("weights_not_found", f"No weights file at {weights_file}.")
    sha = sha256_file(weights_file)
    manifest = manifest_read(weights_file=weights_file)
    try:
        with transaction.atomic():
            return ModelVersion.objects.create(
                name=name,
                version=version,
                weights_path=str(weights_path),
                sha256=sha,
                manifest=manifest,
                dataset_version=_trained_on(manifest),
                registered_by=registered_by,
            )
    except IntegrityError as exc:
        raise Conflict("model_version_exists", f"{name} {version} is already registered.") from exc


def _require_manage(user) -> None:
    if user is None or not user.has_perm(MANAGE_PERM):
        raise PermissionDenied("Only admins activate or roll back models.")


@transaction.atomic
def model_version_activate(
    *,
    model_version: ModelVersion,
    user,
    gate: bool = True,
    action: str = "model_activate",
    ip: str | None = None,
) -> ModelVersion:
    """Make ``model_version`` the one active version (admins only). Refused unless its
    evaluation on the reference split passes the release gates (``gate=False`` for a
    rollback to a version that was active before). Audited."""
    from apps.clinical.services.audit import audit_record
    from apps.models.services.evaluation import release_gate_check

    _require_manage(user)
    if gate and not model_version.is_active:
        result = release_gate_check(model_version=model_version)
        if not result.passed:
            raise Conflict(
                "release_gate_failed",
                f"{model_version} does not pass the release gate: "
                + "; ".join(f["message"] for f in result.failures)
                + ".",
                details={"failures": result.failures},
            )
    details = {"name": model_version.name, "version": model_version.version}
    audit_record(
        actor=user,
        action=action,
        target_type="model_version",
        target_id=str(model_version.pk),
        ip=ip,
        details=details,
    )
    # Lock the rows involved so two admins cannot interleave.
    locked = list(
        ModelVersion.objects.select_for_update().filter(Q(is_active=True) | Q(pk=model_version.pk))
    )
    target = next(mv for mv in locked if mv.pk == model_version.pk)
    if target.is_active:
        return target
    ModelVersion.objects.filter(is_active=True).exclude(pk=target.pk).update(is_active=False)
    target.is_active = True
    target.activated_at = timezone.now()
    target.activated_by = user
    target.save(update_fields=["is_active", "activated_at", "activated_by"])
    model_version.refresh_from_db()
    return target


@transaction.atomic
def model_version_rollback(*, user) -> ModelVersion:
    """Re-activate the version that was active before the current one."""
    _require_manage(user)
    current = model_version_active()
    previous = model_version_previous(exclude=current)
    if previous is None:
        raise Conflict("no_previous_model", "There is no previously active model.")
    return model_version_activate(
        model_version=previous, user=user, gate=False, action="model_rollback"
    )


@transaction.atomic
def model_version_bundled_register(*, weights_file: Path) -> tuple[ModelVersion, bool, bool]:
    """Register bundled weights (idempotent); activate them if no model is active.

    Name and version come from the manifest (fallback: file stem, sha prefix).
    Returns ``(model_version, created, activated)``. A system action: no user.
    """
    manifest = manifest_read(weights_file=weights_file)
    sha = sha256_file(weights_file)
    name = str(manifest.get("name") or weights_file.stem)
    version = str(manifest.get("version") or sha[:12])
    model_version, created = ModelVersion.objects.get_or_create(
        name=name,
        version=version,
        defaults={
            "weights_path": str(weights_file),
            "sha256": sha,
            "manifest": manifest,
            "dataset_version": _trained_on(manifest),
        },  # fmt: skip
    )
    if not created and model_version.sha256 != sha:
        raise Conflict(
            "model_version_conflict",
            f"{name} {version} is registered with a different sha256; bump the version.",
        )
    activated = False
    if not ModelVersion.objects.select_for_update().filter(is_active=True).exists():
        model_version.is_active = True
        model_version.activated_at = timezone.now()
        model_version.save(update_fields=["is_active", "activated_at"])
        activated = True
    return model_version, created, activated
