"""Rule actions: one module per kind of `then` item (see `base`), found by `registry`."""
