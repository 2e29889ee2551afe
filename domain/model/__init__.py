"""The model: aggregates that guard their own invariants, their events, and value objects."""
