"""Pages of the monitoring app: probes, metrics, workers, health and success metrics,
clinical performance, incidents (one module each)."""
