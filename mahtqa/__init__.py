"""MAHT-QA: clinical QA platform for the MAHT-Net cephalometric landmark model.

This package deliberately does NOT import the Celery app: the framework-free
packages (imaging, engine, cephalometry) live under it and must import without
Django or Celery. The Celery app is loaded by ``apps.core`` when Django starts
and found by ``celery -A mahtqa`` as ``mahtqa.celery``.
"""
