"""Framework-free monitoring analysis: environment checks, drift, similarity, health.

No Django, DRF or Celery here (import-linter contract); apps.monitoring stores and shows.
"""
