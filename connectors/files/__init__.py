"""File connectors: CSV/TSV, JSON and JSON Lines exports."""
