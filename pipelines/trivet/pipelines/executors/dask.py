"""The Dask executor: steps run in the worker processes of a ``dask.distributed`` cluster.

The engine stays in the calling process: it decides what runs, computes cache keys and
writes every record, exactly as with the local executor. Each attempt goes to the
cluster as a :class:`~trivet.pipelines.executors._attempt.RemoteAttempt` — the step
function by reference, its inputs as artifact digests, the run token — and comes back
as the stored output's digest, the captured logs and the error.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from trivet.errors import BackendError, MissingDependency, ValidationError
from trivet.pipelines.errors import WorkerLost
from trivet.pipelines.executors._attempt import RemoteAttempt

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["DaskExecutor"]

T = TypeVar("T")

_SCHEMES = ("tcp://", "tls://", "ws://", "wss://", "inproc://", "ucx://")


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise MissingDependency("distributed", extra="dask") from None
    return distributed


def scheduler_address(address: str) -> str:
    """Return a Dask scheduler address from ``dask://host:port``, ``tcp://...`` or ``host:port``.

    Raises:
        ValidationError: the address names no host and port.
    """
    text = address.strip()
    if text.startswith("dask://"):
        text = "tcp://" + text.removeprefix("dask://")
    if not text.startswith(_SCHEMES):
        text = "tcp://" + text
    rest = text.split("://", 1)[1]
    if not rest or rest.startswith(":") or "/" in rest:
        raise ValidationError(
            f"{address!r} is not a Dask scheduler address.",
            hint="give host:port, e.g. 'tcp://scheduler:8786' or 'dask://scheduler:8786'",
        )
    return text


@dataclass
class _Run:
    """The attempts of one execution (one engine thread) on this executor."""

    running: int = 0
    backlog: deque[tuple[Future[Any], Callable[[], Any]]] = field(default_factory=deque)
    live: dict[Future[Any], Any] = field(default_factory=dict)  # ours → Dask's future


class DaskExecutor:
    """Run steps in the worker processes of a Dask cluster (``dask.distributed``).

    The pipeline runs unchanged: the engine (in this process) decides what runs, keys
    the cache and writes the records; each attempt goes to the cluster with the step
    function by reference, its inputs as artifact digests and the execution's run
    token, with which the worker opens the run-as principal's own session. So the
    workers must reach the workspace — its catalog and artifact store — and import the
    step's module (code in ``__main__`` or a notebook is sent by value). See "Running on
    Dask" in ``docs/pipelines.md``.

    One executor serves any number of executions, one after another or at once; the
    engine's ``close()`` at the end of an execution cancels only that execution's
    unfinished attempts. :meth:`shutdown` (or leaving a ``with`` block) closes the
    client and cluster the executor made itself.

    Args:
        address: a scheduler address (``"tcp://host:8786"``, ``"dask://host:8786"``), a
            ``distributed.Client``, or None to start a ``LocalCluster`` of worker
            processes on this machine (closed by :meth:`shutdown`).
        max_parallel: the most attempts of one execution on the cluster at once (None:
            as many as the cluster's workers take; the scheduler queues the rest).
        workspace: the workspace's folder as the workers see it (default: the
            client's), when the workers mount it elsewhere.

    Raises:
        MissingDependency: ``distributed`` is not installed (``trivet[dask]``).
        BackendError: no scheduler answers at ``address``.

    Example:
        >>> with DaskExecutor("tcp://scheduler:8786") as dask:  # doctest: +SKIP
        ...     Pipelines(session).run(train, executor=dask)
    """

    in_process = False
    """Attempts run in other processes: the engine sends self-contained, picklable ones."""

    def __init__(
        self,
        address: str | Any | None = None,
        /,
        *,
        max_parallel: int | None = None,
        workspace: str | Path | None = None,
    ) -> None:
        if max_parallel is not None and (
            isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1
        ):
            raise ValidationError(f"max_parallel must be a positive integer, not {max_parallel!r}.")
        distributed = _distributed()
        self.max_parallel = max_parallel
        self.workspace = str(workspace) if workspace is not None else None
        self._cluster: Any = None
        self._owns_client = True
        self._shutdown_on_close = False
        if isinstance(address, distributed.Client):
            self.client = address
            self._owns_client = False
        elif address is None:
            self._cluster = distributed.LocalCluster(processes=True, dashboard_address=None)
            self.client = distributed.Client(self._cluster)
        elif isinstance(address, str):
            target = scheduler_address(address)
            try:
                self.client = distributed.Client(target, timeout="10s")
            except OSError as exc:
                raise BackendError(
                    f"No Dask scheduler answered at {target!r}: {exc}.",
                    hint="start one (`dask scheduler`, then `dask worker ADDRESS`) or check "
                    "the address",
                ) from None
        else:
            raise ValidationError(
                f"DaskExecutor takes a scheduler address, a distributed.Client or None, "
                f"not {type(address).__name__}.",
                hint="e.g. DaskExecutor('tcp://scheduler:8786')",
            )
        self._lock = threading.Lock()
        self._runs: dict[int, _Run] = {}
        self._owner: dict[Future[Any], _Run] = {}
        self._counter = itertools.count(1)

    def __repr__(self) -> str:
        cap = "" if self.max_parallel is None else f" max_parallel={self.max_parallel}"
        scheduler = getattr(self.client, "scheduler", None)
        return f"<DaskExecutor {getattr(scheduler, 'address', '?')}{cap}>"

    # -- the protocol ---------------------------------------------------------------------------
    def submit(self, fn: Callable[[], T], /) -> Future[T]:
        """Send ``fn`` (picklable) to the cluster; return a future of its result.

        A worker that dies while running it makes the scheduler run it again elsewhere
        (up to ``distributed.scheduler.allowed-failures`` times); after that the
        future fails with :class:`~trivet.pipelines.WorkerLost`.
        """
        if isinstance(fn, RemoteAttempt) and self.workspace is not None:
            fn = replace(fn, workspace=self.workspace)  # type: ignore[assignment]
        future: Future[T] = Future()
        future.set_running_or_notify_cancel()
        with self._lock:
            run = self._runs.setdefault(threading.get_ident(), _Run())
            self._owner[future] = run
            if self.max_parallel is not None and run.running >= self.max_parallel:
                run.backlog.append((future, fn))
                return future
            run.running += 1
        self._dispatch(run, future, fn)
        return future

    def abandon(self, future: Future[Any], /) -> None:
        """Cancel a timed-out attempt and free its slot.

        A task still queued is dropped; one already running cannot be interrupted (as
        with threads): its worker thread stays busy until the step returns, and its
        result is discarded.
        """
        with self._lock:
            run = self._owner.get(future)
            if run is None:
                return
            for item in list(run.backlog):
                if item[0] is future:
                    run.backlog.remove(item)
                    del self._owner[future]
                    return
            remote = run.live.pop(future, None)
            if remote is None:
                return
            run.running -= 1
            del self._owner[future]
            ready = self._next(run)
        remote.cancel()
        for item in ready:
            self._dispatch(run, *item)

    def close(self) -> None:
        """Cancel the calling execution's unfinished attempts (running ones are not waited
        for). The client stays connected for later executions: see :meth:`shutdown`."""
        with self._lock:
            run = self._runs.pop(threading.get_ident(), None)
            remote = [] if run is None else list(run.live.values())
            if run is not None:
                for future in [*run.live, *(f for f, _ in run.backlog)]:
                    self._owner.pop(future, None)
                run.live.clear()
                run.backlog.clear()
        for r in remote:
            r.cancel()
        if self._shutdown_on_close:
            self.shutdown()

    # -- the cluster ------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Close the client and the cluster this executor made (not a Client given to it)."""
        if self._owns_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    # -- internals --------------------------------------------------------------------------------
    def _next(self, run: _Run) -> list[tuple[Future[Any], Callable[[], Any]]]:
        """Take backlog items into free slots (under the lock)."""
        ready = []
        while run.backlog and (self.max_parallel is None or run.running < self.max_parallel):
            ready.append(run.backlog.popleft())
            run.running += 1
        return ready

    def _dispatch(self, run: _Run, future: Future[Any], fn: Callable[[], Any]) -> None:
        label = fn.step if isinstance(fn, RemoteAttempt) else "task"
        key = f"trivet-{label}-{next(self._counter)}-{uuid.uuid4().hex[:8]}"
        try:
            remote = self.client.submit(fn, key=key, pure=False)
        except BaseException as exc:  # a closed client, a function that does not pickle
            with self._lock:
                run.running -= 1
                self._owner.pop(future, None)
                ready = self._next(run)
            future.set_exception(exc)
            for item in ready:
                self._dispatch(run, *item)
            return
        with self._lock:
            run.live[future] = remote
        remote.add_done_callback(lambda r: self._done(run, future, r))

    def _done(self, run: _Run, future: Future[Any], remote: Any) -> None:
        from distributed.scheduler import KilledWorker

        with self._lock:
            counted = run.live.get(future) is remote
            if counted:
                del run.live[future]
                run.running -= 1
                self._owner.pop(future, None)
            ready = self._next(run) if counted else []
        if counted and not future.done():
            try:
                future.set_result(remote.result())
            except KilledWorker as exc:
                future.set_exception(
                    WorkerLost(
                        f"The workers running this step died ({exc}).",
                        hint="a step that kills its worker (memory, a crash in native "
                        "code) fails; give the workers more memory or fix the step",
                    )
                )
            except BaseException as exc:  # cancelled, or the cluster went away
                future.set_exception(exc)
        for item in ready:
            self._dispatch(run, *item)
