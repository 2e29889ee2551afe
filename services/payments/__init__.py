"""Payments: recording, importing bank files, matching."""
