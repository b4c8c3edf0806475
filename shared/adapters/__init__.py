"""Azure adapters (one per service)."""
