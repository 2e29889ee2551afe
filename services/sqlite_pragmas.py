"""How this process's SQLite connections are tuned, and how they are left at a stop.

The views are rebuilt from the log, so their file trades durability for speed; the
one process that writes them gets a large page cache, every other connection a small
one; and a clean stop checkpoints each write-ahead log into its database file.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

VIEW_WRITER_CACHE_KIB = 65536
"""The page cache of a connection while it writes the views (64 MiB; SQLite's own is 2 MiB)."""
VIEW_READER_CACHE_KIB = 2048
"""The page cache of a connection while it reads the views (SQLite's default size)."""
VIEW_CHECKPOINT_PAGES = 16384  # 64 MiB of 4 KiB pages
CHECKPOINT_BUSY_MS = 2000
"""How long a closing checkpoint waits for a reader of another process before giving up."""


class ViewCache:
    """Which page cache a pooled views connection has: the writer's or a reader's.

    SQLite's `cache_size` is per connection and a pool keeps up to five of them open
    (and issues up to fifteen). With the writer's 64 MiB on every one, a server process
    that only reads the views (the views child writes them) filled a fresh cache on each
    of them as requests spread over the pool: its RSS rose 111 → 221 MB in a soak and
    went on rising idle. Now the size follows the use: a connection checked out to
    write, in a process that writes the views (`writer` True), gets the big cache; any
    other check-out gets the small one, and SQLite frees the pages above it at once.
    Memory is then bounded by one writer cache plus `pool_size + max_overflow` small ones.
    """

    def __init__(self, pool: Any, writer: bool) -> None:
        self.pool = pool
        self.writer = writer

    def size_for(self, is_writer: bool | None) -> int:
        return VIEW_WRITER_CACHE_KIB if self.writer and is_writer is True else VIEW_READER_CACHE_KIB

    def install(self) -> None:
        """Wrap the pool's `get_connection` so that each check-out gets the cache it needs."""
        get_connection = self.pool.get_connection

        def sized_connection(timeout: float | None = None, *, is_writer: bool | None = None) -> Any:
            connection = get_connection(timeout, is_writer=is_writer)
            try:
                self._resize(connection, self.size_for(is_writer))
            except BaseException:
                self.pool.put_connection(connection)
                raise
            return connection

        self.pool.get_connection = sized_connection

    @staticmethod
    def _resize(connection: Any, kib: int) -> None:
        if getattr(connection, "threadline_cache_kib", None) != kib:
            connection._sqlite_conn.execute(f"PRAGMA cache_size=-{kib}")
            connection.threadline_cache_kib = kib

    def stop_writing(self) -> None:
        """This process no longer writes the views: shrink the caches its idle connections hold.

        `threadline serve` catches the views up itself and then hands them to the views
        child; the connection that did the catching up would otherwise keep 64 MiB idle.
        """
        self.writer = False
        taken: list[Any] = []
        try:
            for _ in range(self.pool.num_in_pool):
                taken.append(self.pool.get_connection(is_writer=False))
        finally:
            for connection in taken:
                self.pool.put_connection(connection)


def relax_view_durability(factory: Any, writer: bool = True) -> ViewCache | None:
    """SQLite views commit without an fsync (``synchronous=NORMAL`` in WAL mode).

    The views are derived data: a power cut can at worst roll back their last
    transactions, and because each transaction holds the view rows together with
    their tracking position, the runner then re-applies exactly those events. The
    file is never left inconsistent (that is what WAL guarantees with NORMAL). The
    log itself keeps the default FULL synchronisation.

    The views writer also gets a 64 MiB page cache instead of SQLite's 2 MiB (see
    `ViewCache`), and every views connection checkpoints the WAL every 64 MiB instead of
    every 4 MiB. Every event updates rows by random UUID keys across a dozen indexes, so a
    page of a thousand events dirties thousands of database pages: with the defaults each
    such commit re-read evicted pages and set off a checkpoint (copy and fsync) of its
    own. Measured with a catch-up of 20,000 messages: 543 µs of CPU per message with the
    defaults, 450 with the larger checkpoint interval alone.

    Returns the cache policy of the pool (None for PostgreSQL views).
    """
    pool: Any = getattr(getattr(factory, "datastore", None), "pool", None)
    create = getattr(pool, "_create_connection", None)
    if create is None or type(pool).__module__ != "eventsourcing.sqlite":
        return None

    def create_relaxed() -> Any:
        connection = create()
        connection._sqlite_conn.execute("PRAGMA synchronous=NORMAL")
        connection._sqlite_conn.execute(f"PRAGMA cache_size=-{VIEW_READER_CACHE_KIB}")
        connection.threadline_cache_kib = VIEW_READER_CACHE_KIB
        connection._sqlite_conn.execute(f"PRAGMA wal_autocheckpoint={VIEW_CHECKPOINT_PAGES}")
        connection._sqlite_conn.execute(f"PRAGMA journal_size_limit={VIEW_WRITER_CACHE_KIB * 1024}")
        return connection

    pool._create_connection = create_relaxed
    cache = ViewCache(pool, writer)
    cache.install()
    return cache


def checkpoint(datastore: Any, name: str) -> bool:
    """Copy a SQLite write-ahead log into its database file and truncate it (True if done).

    Closing the last connection does this too, but only if it is the last one of any
    process; an explicit TRUNCATE checkpoint at a clean stop leaves the file whole and the
    `-wal` empty even when a reader elsewhere still has the database open.
    """
    pool: Any = getattr(datastore, "pool", None)
    if type(pool).__module__ != "eventsourcing.sqlite" or pool.is_sqlite_memory_mode:
        return False
    try:
        connection = pool.get_connection(is_writer=None)
    except Exception:
        log.warning("cannot checkpoint %s: no connection", name, exc_info=True)
        return False
    try:
        raw = connection._sqlite_conn
        raw.execute(f"PRAGMA busy_timeout={CHECKPOINT_BUSY_MS}")
        busy, wal_pages, copied = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except Exception:
        log.warning("checkpointing %s failed", name, exc_info=True)
        return False
    finally:
        pool.put_connection(connection)
    if busy:
        log.warning(
            "%s: checkpoint incomplete (%s of %s pages; a reader is busy)", name, copied, wal_pages
        )
        return False
    return True
