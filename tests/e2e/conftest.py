"""The browser fixtures, defined once for every end-to-end module (one Chromium per session)."""

from tests.e2e.browser import browser, live_server, page  # noqa: F401
