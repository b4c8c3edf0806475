"""soc-responder domain and Azure adapters (no HTTP, no Functions imports)."""
