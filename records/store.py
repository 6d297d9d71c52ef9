"""The records store: the database plus the org tree, as the layers above use them.

``async with store.transaction() as tx:`` gives a session that commits on success and rolls
back on error, converting SQLAlchemy errors into :class:`RecordsError`.

``await store.run(fn, *args)`` runs a plain function ``fn(conn, *args)`` over a synchronous
Core connection in one transaction: the hot paths of the signaling hub (hello, join), which
issue a handful of prebuilt Core statements. On SQLite it runs on one database thread with its
own connection to the same file, so a whole transaction costs one hop between the event loop
and that thread; through aiosqlite every statement costs four (cursor, execute, fetch, close),
each a wake-up of both threads (measured: 0.3 ms of CPU per statement, the bulk of a join's
cost). Calls that arrive together are grouped into one transaction there (a group commit:
:class:`_Batch`), so a burst of joins costs one commit and one wake-up of the event loop, not
one each. On PostgreSQL it runs through the async driver (``AsyncConnection.run_sync``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from config.errors import Conflict, RecordsError
from records import orgs
from records.db import Database, _sqlite_pragmas

P = ParamSpec("P")
T = TypeVar("T")

#: what :meth:`Store.run` hands to its function (a synchronous Core connection in a transaction)
SyncConnection = Connection
#: what :meth:`Store.transaction` yields (the layers above pass it to ``records`` functions)
Transaction = AsyncSession


@dataclasses.dataclass(slots=True)
class _Batch:
    """:meth:`Store.run` calls waiting for the database thread, and whether it is busy.

    The first call of an idle store is sent at the end of the event loop's current turn, with
    every call that arrived in that turn; calls that arrive while a batch runs go in the next
    batch, sent when it returns. So batches grow with the load and cost nothing when idle.
    """

    calls: list[tuple[Callable[[SyncConnection], Any], asyncio.Future[Any]]] = dataclasses.field(
        default_factory=list
    )
    busy: bool = False
    idle: asyncio.Event | None = None  # set while nothing is queued or running (for close)


class SqliteGate:
    """Keeps the hub's SQLite transactions from waiting on each other inside SQLite.

    SQLite has one writer; a second one waits in SQLite's busy handler, which sleeps (up to
    100 ms at a time). ``shared`` holders are :meth:`Store.run` calls, already one at a time on
    the store's database thread, so any number may be queued there; an ``exclusive`` holder
    (an ORM transaction on the aiosqlite pool) runs alone. A waiting exclusive holder stops new
    shared ones, so a burst of joins cannot starve it.
    """

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._shared = 0
        self._exclusive = False
        self._exclusive_waiting = 0

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        """Hold the gate beside other shared holders."""
        async with self._cond:
            await self._cond.wait_for(lambda: not self._exclusive and not self._exclusive_waiting)
            self._shared += 1
        try:
            yield
        finally:
            async with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold the gate alone."""
        async with self._cond:
            self._exclusive_waiting += 1
            try:
                await self._cond.wait_for(lambda: not self._exclusive and not self._shared)
            finally:
                self._exclusive_waiting -= 1
                self._cond.notify_all()  # shared waiters held back by this waiter (if cancelled)
            self._exclusive = True
        try:
            yield
        finally:
            async with self._cond:
                self._exclusive = False
                self._cond.notify_all()


class Store:
    """Owns the database and the current org tree snapshot."""

    def __init__(self, database_url: str) -> None:
        self.db = Database(database_url)
        self.tree = orgs.OrgTree(())
        # SQLite file databases: a synchronous engine on one thread for run(); made on first use
        path = database_url.split(":///", 1)[-1] if self.db.is_sqlite else ""
        self._sqlite_path = path if path and path != ":memory:" else ""
        self._sync_engine: Engine | None = None
        self._sync_thread: concurrent.futures.ThreadPoolExecutor | None = None
        self._closed = False
        self._batch = _Batch()
        #: the signaling hub's transactions take turns here on SQLite (:meth:`gated_transaction`)
        self._gate = SqliteGate() if self.db.is_sqlite else None

    async def start(self, *, migrate: bool) -> None:
        """Apply migrations (embedded default) and load the org tree."""
        if migrate:
            await self.db.upgrade()
        await self.reload_tree()

    async def reload_tree(self) -> orgs.OrgTree:
        """Re-read the org tree (after an import)."""
        async with self.transaction() as tx:
            self.tree = await orgs.load_tree(tx)
        return self.tree

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: commit on success, roll back on any error."""
        async with self.db.sessions() as session:
            try:
                yield session
                await session.commit()
            except IntegrityError as exc:
                await session.rollback()
                raise Conflict(f"conflicting write: {exc.orig}") from exc
            except SQLAlchemyError as exc:
                await session.rollback()
                raise RecordsError(f"database error: {exc.__class__.__name__}: {exc}") from exc
            except BaseException:
                await session.rollback()
                raise

    @contextlib.asynccontextmanager
    async def gated_transaction(self) -> AsyncIterator[AsyncSession]:
        """:meth:`transaction`; on SQLite, one at a time (the signaling hub's hot path).

        SQLite has one writer: concurrent transactions of the hub would wait in SQLite's busy
        handler (sleeps of up to 100 ms, measured p99 join of seconds at 20 joins in flight)
        or fail outright when a read snapshot turns into a write. Queueing them on an asyncio
        lock costs a millisecond per transaction instead. PostgreSQL needs no such lock.
        """
        if self._gate is None:
            async with self.transaction() as tx:
                yield tx
            return
        async with self._gate.exclusive(), self.transaction() as tx:
            yield tx

    async def gated_run(
        self,
        fn: Callable[Concatenate[SyncConnection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """:meth:`run`, never beside a :meth:`gated_transaction`.

        Runs do not wait for each other here: on SQLite they queue on the store's one database
        thread, which takes the next as soon as one commits (taking turns on a lock instead
        cost two thread wake-ups per transaction, most of a join's latency on a busy machine).
        """
        if self._gate is None:
            return await self.run(fn, *args, **kwargs)
        async with self._gate.shared():
            return await self.run(fn, *args, **kwargs)

    async def run(
        self,
        fn: Callable[Concatenate[SyncConnection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``fn(conn, *args, **kwargs)`` in one transaction: commit if it returns.

        ``fn`` issues Core statements on ``conn`` and returns plain values; it runs on the
        database thread (SQLite), so it must only read immutable state of the caller. Errors
        are converted as in :meth:`transaction`; errors ``fn`` raises itself (e.g.
        ``AccessDenied``) roll the transaction back and propagate unchanged. On SQLite, calls
        that arrive together share one transaction (:class:`_Batch`); each is committed before
        its caller resumes, and one that raises leaves the others as if it had run alone.
        """
        call = functools.partial(fn, **kwargs) if kwargs else fn
        try:
            if self._sqlite_path:
                if self._closed:
                    raise RecordsError("the records store is closed")

                def bound(conn: SyncConnection) -> T:
                    return fn(conn, *args, **kwargs)

                result: T = await self._enqueue(bound)
                return result
            async with self.db.engine.begin() as conn:
                return await conn.run_sync(call, *args)
        except IntegrityError as exc:
            raise Conflict(f"conflicting write: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            raise RecordsError(f"database error: {exc.__class__.__name__}: {exc}") from exc

    def _enqueue(self, call: Callable[[SyncConnection], Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        batch = self._batch
        batch.calls.append((call, future))
        if not batch.busy:
            batch.busy = True
            if batch.idle is not None:
                batch.idle.clear()
            loop.call_soon(self._send_batch)  # with whatever else arrives in this turn
        return future

    def _send_batch(self) -> None:
        batch = self._batch
        calls = [(c, f) for c, f in batch.calls if not f.cancelled()]
        batch.calls = []
        if not calls:
            batch.busy = False
            if batch.idle is not None:
                batch.idle.set()
            return
        job = asyncio.get_running_loop().run_in_executor(
            self._thread(), self._run_batch_sync, [c for c, _ in calls]
        )
        job.add_done_callback(functools.partial(self._settle, calls))

    def _settle(
        self,
        calls: list[tuple[Callable[[SyncConnection], Any], asyncio.Future[Any]]],
        job: asyncio.Future[list[tuple[bool, Any]]],
    ) -> None:
        if job.cancelled():
            outcomes: list[tuple[bool, Any]] = [(False, RecordsError("cancelled"))] * len(calls)
        elif (error := job.exception()) is not None:
            outcomes = [(False, error)] * len(calls)
        else:
            outcomes = job.result()
        for (_call, future), (ok, value) in zip(calls, outcomes, strict=True):
            if not future.done():
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        self._send_batch()  # the calls that arrived meanwhile, or idle

    def _run_batch_sync(
        self, calls: list[Callable[[SyncConnection], Any]]
    ) -> list[tuple[bool, Any]]:
        # on the database thread. All in one transaction; if any call raises, that transaction
        # is rolled back whole and each call runs again in a transaction of its own, so every
        # call commits or fails exactly as it would have alone (a refused join writes nothing,
        # the joins beside it are written)
        if len(calls) > 1:
            with contextlib.suppress(Exception):
                return [(True, r) for r in self._run_sync(_run_all, calls)]
        outcomes: list[tuple[bool, Any]] = []
        for call in calls:
            try:
                outcomes.append((True, self._run_sync(call)))
            except Exception as exc:  # handed to the caller's await, converted there
                outcomes.append((False, exc))
        return outcomes

    def _thread(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._sync_thread is None:
            self._sync_thread = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="records-sqlite"
            )
        return self._sync_thread

    def _run_sync(self, fn: Callable[..., T], *args: object) -> T:
        # on the database thread: the engine (and its one pooled connection) lives here
        if self._sync_engine is None:
            engine = create_engine(f"sqlite:///{self._sqlite_path}", connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
            self._sync_engine = engine
        with self._sync_engine.begin() as conn:
            return fn(conn, *args)

    def _dispose_sync(self) -> None:
        if self._sync_engine is not None:
            self._sync_engine.dispose()
            self._sync_engine = None

    async def import_org_file(self, path: Path) -> orgs.ImportResult:
        """Validate and import an org file in one transaction, then reload the tree."""
        specs = orgs.parse_org_file(path)
        async with self.transaction() as tx:
            result = await orgs.import_units(tx, specs)
        await self.reload_tree()
        return result

    async def ping(self) -> None:
        """Raise RecordsError if the database does not answer."""
        await self.db.ping()

    async def close(self) -> None:
        """Close the database (and the SQLite thread of :meth:`run`); idempotent."""
        self._closed = True
        if self._batch.busy:  # calls made before close still commit (and are answered)
            self._batch.idle = self._batch.idle or asyncio.Event()
            await self._batch.idle.wait()
        thread, self._sync_thread = self._sync_thread, None
        if thread is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(thread, self._dispose_sync)
            # the thread has finished its last job; shutting down only joins it
            await asyncio.to_thread(thread.shutdown, wait=True)
        await self.db.close()


def _run_all(conn: SyncConnection, calls: list[Callable[[SyncConnection], Any]]) -> list[Any]:
    return [call(conn) for call in calls]
