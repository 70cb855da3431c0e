"""Pages of the model registry and lifecycle."""
