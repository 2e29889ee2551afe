"""Persistence infrastructure: group commit, unit of work, store access and recorders."""
