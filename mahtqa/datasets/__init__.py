"""Framework-free dataset analysis: layouts, safe import, integrity, annotation
validity, image quality, annotator consistency, balance, the data-loading
profiler and model-found annotation errors. No Django, DRF or Celery here; the
``apps.datasets`` app stores what these functions compute."""
