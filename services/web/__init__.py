"""The operator web app: server-rendered Jinja2 pages, HTMX (vendored), live updates over SSE."""
