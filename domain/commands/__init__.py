"""The commands: load aggregates, let them decide, append what they decided (one module per use case)."""
