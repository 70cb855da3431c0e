"""Writes for monitoring: readiness and heartbeats, incidents, environment, health, clinical.

Import from the submodule (``apps.monitoring.services.incidents``); the readiness writes are
re-exported here for the callers that predate the package.
"""

from apps.monitoring.services.readiness import (
    heartbeat_record,
    readiness_demo_seed,
    readiness_record,
    worker_heartbeat_record,
    worker_heartbeats_prune,
)

__all__ = [
    "heartbeat_record",
    "readiness_demo_seed",
    "readiness_record",
    "worker_heartbeat_record",
    "worker_heartbeats_prune",
]
