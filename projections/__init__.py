"""The read models (views): SQL tables built from the log, and the only code that reads them.

Each module owns its tables: it writes them (a `ViewProjection`) and exports the typed
readers everything else uses — functions taking the view database (`sql.ViewReader`)
first and returning frozen dataclasses. No SQL against a view table is written outside
this package (`tests/test_view_sql_boundary.py`); timestamps are `base.ts` / `base.parse_ts`.
"""
