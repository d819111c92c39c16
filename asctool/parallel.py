"""The one worker pool of asctool: ``nj`` processes, one BLAS thread each, that die with their parent.

Every stage or library function that spreads work over processes (``featurize``,
``synth``, ``augment``, the room simulation of ``reverb``, the response
estimate of ``spectrum-correction``) runs it through :class:`WorkerPool`:

- **One thread per worker.** Workers start with the BLAS/OpenMP thread
  variables (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ...) at 1, so N
  workers keep to N cores. On Linux, when the thread count of every loaded
  BLAS library can be set through ``ctypes`` (found in ``/proc/self/maps``, as
  threadpoolctl does), workers are forked from this process (they start at
  once, with everything imported) and each sets its BLAS to one thread
  itself; otherwise they come from a fork server started with the variables
  at 1 (:func:`start_method`). (``pin_blas=False`` keeps this process's BLAS
  in the workers instead, for results that must not depend on ``nj``.)
- **Workers die with their parent.** A forked worker on Linux asks the kernel
  for SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``), other
  workers watch the parent from a thread; either way a ``kill -9`` of a stage
  leaves no workers behind.
- **A dead worker is an error.** A worker killed (out of memory, a signal)
  makes the pool raise a one-line :class:`~asctool.errors.AsctoolError`
  instead of hanging; an exception raised by a task reaches the caller as
  itself.
- **Signals are the parent's.** Workers ignore SIGINT and SIGHUP (a Ctrl-C in
  a terminal reaches the whole process group; the parent decides). When the
  caller's block ends with an exception (an error, or an interrupt: the CLI
  turns SIGTERM and SIGINT into one), the pool stops at once: pending tasks
  are cancelled and the workers get SIGTERM, which makes a running task raise
  inside the worker, so its own clean-up (temporary files) runs; a worker
  still alive after a grace period is killed. A SIGTERM sent to a worker by
  someone else ends its task with the one-line error above.
- **Bounded, ordered.** :meth:`WorkerPool.imap` keeps at most
  ``max_pending`` tasks in flight (memory does not grow with the number of
  tasks) and yields results in input order.
- **Shared memory where it pays.** With ``slot_bytes``, forked workers write
  their (large) results straight into an anonymous shared mapping made before
  the fork, one slot per task in flight, instead of pickling them through a
  pipe (``featurize``: about a fifth of the CPU time of ``--nj 2``).

With ``nj == 1`` everything runs in this process, through the same calls.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from .errors import AsctoolError
from .io import check_interrupted, interrupts_deferred

__all__ = ["WorkerPool", "start_method"]

log = logging.getLogger(__name__)

#: Environment variables that size the thread pools of BLAS/OpenMP libraries;
#: worker processes start with all of them at 1 so that N workers use N cores.
_THREAD_ENV = (
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
)

# symbols that set the thread count of a loaded BLAS (OpenBLAS as bundled by numpy
# and scipy wheels, under its several names, and MKL); all take a C int
_BLAS_LIBRARIES = ("openblas", "mkl_rt")
_BLAS_SET_THREADS = (
    "openblas_set_num_threads", "openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
    "scipy_openblas_set_num_threads64_", "MKL_Set_Num_Threads",
)
# and the matching getters (same order)
_BLAS_GET_THREADS = (
    "openblas_get_num_threads", "openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
    "scipy_openblas_get_num_threads64_", "MKL_Get_Max_Threads",
)

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

#: In a worker: the parent's anonymous shared mapping (``slot_bytes`` pools forked only).
_SHARED: Any = None
#: In a worker: whether a task is running, and the stopping signal received (0: none).
_IN_TASK = False
_STOPPED = 0
#: Seconds the workers get to end their task after SIGTERM before they are killed.
_STOP_GRACE = 10.0


class _WorkerStopped(BaseException):
    """Raised in a worker's task by SIGTERM (a BaseException, so no task code swallows it)."""


# --------------------------------------------------------------------------
# process set-up
# --------------------------------------------------------------------------
def _blas_thread_setters() -> list[Callable[[int], Any]] | None:
    """Functions that set the thread count of each BLAS library loaded in this process.

    Found through ``/proc/self/maps`` and ``ctypes`` (what threadpoolctl does,
    without the dependency). None when that is not possible: not Linux, or a
    loaded BLAS without a known setter.
    """
    controls = _blas_thread_controls()
    return None if controls is None else [setter for _, setter in controls]


def _blas_thread_controls() -> list[tuple[Callable[[], int], Callable[[int], Any]]] | None:
    """(getter, setter) of the thread count of each BLAS library loaded here; see :func:`_blas_thread_setters`."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    paths = set()
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and any(name in os.path.basename(fields[5]).lower() for name in _BLAS_LIBRARIES):
            paths.add(fields[5])
    controls = []
    for path in sorted(paths):
        try:
            library = ctypes.CDLL(path)  # already loaded: the same handle
        except OSError:
            return None
        for set_symbol, get_symbol in zip(_BLAS_SET_THREADS, _BLAS_GET_THREADS):
            setter, getter = getattr(library, set_symbol, None), getattr(library, get_symbol, None)
            if setter is not None and getter is not None:
                controls.append((getter, setter))
                break
        else:
            return None
    return controls


@contextlib.contextmanager
def _one_blas_thread(controls) -> Iterator[None]:
    """Run the block with every BLAS of this process at one thread (``controls``: see above), then restore."""
    saved = [getter() for getter, _ in controls]
    for _, setter in controls:
        setter(1)
    try:
        yield
    finally:
        for (_, setter), count in zip(controls, saved):
            setter(count)


def _keep_freed_memory() -> None:
    """Ask glibc to keep freed memory in the heap instead of returning it to the OS.

    A task that allocates and frees the same few arrays of some MB per item
    (featurize: every clip) otherwise has them unmapped on free and
    page-faulted back in by the next item, which costs more than the FFT. With
    a fixed mmap threshold (32 MB) and a high trim threshold the heap is
    reused; it stays at its peak size (tens of MB). No-op where ``mallopt`` is
    missing (not glibc).
    """
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 << 20)
    mallopt(m_trim_threshold, 256 << 20)


@contextlib.contextmanager
def _single_threaded_children() -> Iterator[None]:
    """Set the BLAS/OpenMP thread variables to 1 while worker processes start."""
    saved = {name: os.environ.get(name) for name in _THREAD_ENV}
    os.environ.update({name: "1" for name in _THREAD_ENV})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def start_method() -> str:
    """How :class:`WorkerPool` starts its workers here.

    ``"fork"`` on Linux when every loaded BLAS library can be told its thread
    count (:func:`_blas_thread_setters`): workers are forked from this process
    and set their BLAS to one thread themselves. Otherwise ``"forkserver"``: a
    fresh interpreter started with the BLAS/OpenMP thread variables at 1
    imports the worker's module once and forks every worker from it
    (``"spawn"`` where there is no fork server: Windows). Either way the
    workers start when the pool is entered, before the caller opens its
    outputs, so no file handle reaches them.
    """
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and _blas_thread_setters() is not None:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _watch_owner(owner: int, interval: float = 0.5) -> None:
    """Exit this process as soon as process ``owner`` is gone (checked every ``interval`` s)."""
    while _alive(owner):
        time.sleep(interval)
    os._exit(1)


def _die_with_parent(owner: int, forked: bool) -> None:
    """Make this worker die with the process that owns the pool.

    A forked worker on Linux asks the kernel for SIGKILL when its parent, the
    owner, dies (``PR_SET_PDEATHSIG``); that covers deaths after the call, so
    a worker whose owner is already gone exits here. Other workers (from a fork
    server, which itself lives until its last worker exits, or without
    ``prctl``) watch the owner from a daemon thread instead.
    """
    if os.name != "posix":  # os.kill(pid, 0) terminates the process on Windows
        return
    pinned = False
    if forked and sys.platform.startswith("linux"):
        import ctypes
        import signal

        with contextlib.suppress(OSError, AttributeError):
            pinned = ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    if (os.getppid() != owner) if forked else not _alive(owner):
        os._exit(1)
    if not pinned:
        import signal
        import threading

        # The watch thread must not take the stop signals: the kernel hands a process's
        # SIGTERM to any thread that does not block it, and Python runs the handler in the
        # main thread only at its next bytecode, so a task asleep in a system call (the
        # main thread) would not be stopped. The thread inherits the mask set around start().
        stop_signals = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
        try:
            threading.Thread(target=_watch_owner, args=(owner,), name="asctool-owner-watch", daemon=True).start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _on_stop(signum: int, frame: Any) -> None:
    """SIGTERM in a worker: end the running task with :class:`_WorkerStopped` (its clean-up runs).

    Between tasks nothing is interrupted (the worker may be sending a result);
    the next task is refused instead.
    """
    global _STOPPED
    _STOPPED = signum
    if _IN_TASK:
        raise _WorkerStopped(signum)


def _handle_signals() -> None:
    """In a worker: SIGINT and SIGHUP ignored (the parent decides), SIGTERM ends the task."""
    import signal

    for name in ("SIGINT", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_stop)


def _start_worker(owner: int, forked: bool, pin_blas: bool, reuse_heap: bool, shared: Any,
                  initializer: Callable[..., Any] | None, initargs: tuple) -> None:
    """Initializer of every worker: die with the owner, signals, one BLAS thread, then the caller's initializer."""
    global _SHARED
    _die_with_parent(owner, forked)
    if os.name == "posix":
        _handle_signals()
    if pin_blas:  # forked: the parent's BLAS is loaded already, the variables come too late for it
        os.environ.update({name: "1" for name in _THREAD_ENV})
        for set_threads in _blas_thread_setters() or ():
            set_threads(1)
    if reuse_heap:
        _keep_freed_memory()
    _SHARED = shared
    if initializer is not None:
        initializer(*initargs)


def _noop() -> None:
    """A task that makes the executor start its workers."""


def _run_task(func: Callable[..., Any], *args: Any) -> Any:
    """Run one task in a worker, marked as running for :func:`_on_stop`."""
    global _IN_TASK
    if _STOPPED:
        raise _WorkerStopped(_STOPPED)
    _IN_TASK = True
    try:
        return func(*args)
    finally:
        _IN_TASK = False


def _call(func: Callable[[Any], Any], item: Any) -> Any:
    return _run_task(func, item)


def _call_with_slot(func: Callable[[Any, Any], Any], item: Any, offset: int | None, size: int) -> Any:
    slot = None if offset is None else memoryview(_SHARED)[offset:offset + size]
    return _run_task(func, item, slot)


# --------------------------------------------------------------------------
# the pool
# --------------------------------------------------------------------------
class WorkerPool:
    """Run tasks in ``nj`` worker processes (or in this process for ``nj == 1``).

    Use it as a context manager: entering starts the workers (do it before
    opening output files), leaving stops them. Then call :meth:`imap`.

    Parameters
    ----------
    nj : number of worker processes; 1 runs every task in this process
    initializer : called as ``initializer(*initargs)`` once in each worker
        (after its BLAS is pinned), and once in this process before it runs a
        task itself (``nj == 1`` or ``parent_helps``); it must be a
        module-level function, as must the task functions
    initargs : its arguments (pickled for fork-server workers)
    preload : modules a fork server imports once for all workers (default:
        the initializer's module)
    slot_bytes : size of one shared-memory slot; with it, task functions are
        called as ``func(item, slot)`` (see :meth:`imap`)
    max_pending : tasks in flight at a time (default ``2 nj + 2``)
    pin_blas : run each worker, and the tasks this process runs beside them
        (``parent_helps``), with one BLAS/OpenMP thread (the default). False
        leaves the workers' BLAS as this process's (forked where possible),
        for computations whose float results depend on the BLAS thread count
        and must not depend on ``nj`` (``asctool synth``)
    reuse_heap : keep freed memory in the heap of the workers, and of this
        process when it runs tasks (glibc ``mallopt``; for tasks that allocate
        the same large arrays per item)
    method : a start method to use instead of :func:`start_method`'s choice
        (``"forkserver"``: workers that must not inherit this process's state,
        such as an initialised TensorFlow runtime, which a fork leaves deadlocked)
    name, where : how a dead worker is reported:
        ``"<where>: a <name> worker process died (...); run with --nj 1 to see why"``
        (``where`` is typically the input file, ``name`` the stage)
    """

    def __init__(
        self,
        nj: int,
        *,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple = (),
        preload: Sequence[str] = (),
        slot_bytes: int = 0,
        max_pending: int | None = None,
        pin_blas: bool = True,
        reuse_heap: bool = False,
        name: str = "asctool",
        where: str | os.PathLike | None = None,
        method: str | None = None,
    ) -> None:
        if nj < 1:
            raise AsctoolError(f"nj must be at least 1, got {nj}")
        self.nj = int(nj)
        self.initializer = initializer
        self.initargs = tuple(initargs)
        self.preload = list(preload) or ([initializer.__module__] if initializer is not None else [])
        self.slot_bytes = int(slot_bytes)
        self.max_pending = int(max_pending) if max_pending is not None else 2 * self.nj + 2
        self.pin_blas = pin_blas
        self.reuse_heap = reuse_heap
        self.name = name
        self.where = where
        self.method = method
        self.executor: Any = None
        self.shared: Any = None
        self._free_slots: deque[int] = deque()
        self._local_ready = False
        self._blas: list = []

    # ---- start and stop
    def __enter__(self) -> "WorkerPool":
        if self.nj == 1:
            return self
        import multiprocessing
        import warnings
        from concurrent.futures import ProcessPoolExecutor

        if self.method is not None:
            method = self.method
        elif self.pin_blas:
            method = start_method()
        else:  # fork where possible: the workers keep this process's BLAS exactly as it is
            methods = multiprocessing.get_all_start_methods()
            method = "fork" if "fork" in methods else multiprocessing.get_start_method()
        context = multiprocessing.get_context(method)
        if method == "forkserver":
            context.set_forkserver_preload(["asctool.parallel", *self.preload])
        if method == "fork" and self.slot_bytes > 0:  # the mapping is inherited by fork only
            import mmap

            slots = self.max_pending + 1  # + the one the consumer is reading from
            self.shared = mmap.mmap(-1, slots * self.slot_bytes)
            self._free_slots = deque(range(slots))
        initargs = (os.getpid(), method == "fork", self.pin_blas and method == "fork", self.reuse_heap,
                    self.shared, self.initializer, self.initargs)
        environment = _single_threaded_children() if self.pin_blas else contextlib.nullcontext()
        # an interrupt raised inside a fork hook (logging's) would be lost: it waits for the workers to start
        with environment, warnings.catch_warnings(), interrupts_deferred():
            # Python >= 3.12 warns about fork() with threads running; ours are
            # OpenBLAS's idle pool threads, which OpenBLAS itself makes fork-safe
            warnings.filterwarnings("ignore", message=".*use of fork.*", category=DeprecationWarning)
            self.executor = ProcessPoolExecutor(self.nj, mp_context=context, initializer=_start_worker,
                                                initargs=initargs)
            # start the workers now (forked ones all at once, from this thread; the
            # kernel's parent-death signal follows the thread that forked)
            for _ in range(self.nj):
                self.executor.submit(_noop)
        log.debug("%d %s workers started (%s, BLAS %s)", self.nj, self.name, method,
                  "pinned to one thread" if self.pin_blas else "as in this process")
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if self.executor is not None:
            try:
                if exc_type is not None:  # an error or an interrupt: stop now, not after the running tasks
                    self._stop_workers()
            finally:
                self.executor.shutdown(wait=True, cancel_futures=True)
                self.executor = None
        self.shared = None

    def _stop_workers(self) -> None:
        """Cancel the pending tasks, SIGTERM the workers, kill those alive after :data:`_STOP_GRACE` s."""
        import signal
        from multiprocessing.connection import wait

        # the executor's processes (no public accessor before Python 3.14's terminate_workers)
        processes = list((getattr(self.executor, "_processes", None) or {}).values())
        self.executor.shutdown(wait=False, cancel_futures=True)
        # (``processes`` keeps the Process objects, and so their sentinels, alive meanwhile)
        running = {}
        with contextlib.suppress(ValueError, OSError, AttributeError):
            sentinels = {process.sentinel: process.pid for process in processes}
            exited = set(wait(list(sentinels), timeout=0))
            running = {s: pid for s, pid in sentinels.items() if s not in exited}
        for pid in running.values():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE
        while running and time.monotonic() < deadline:
            # a sentinel is ready once its process has exited (not yet reaped: its pid is not reused)
            for sentinel in wait(list(running), timeout=max(0.0, deadline - time.monotonic())):
                running.pop(sentinel, None)
        for pid in running.values():
            log.warning("%s worker %d did not stop within %g s; killing it", self.name, pid, _STOP_GRACE)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    # ---- running tasks
    def _run_here(self, func: Callable, item: Any) -> Any:
        """Run a task in this process; beside pinned workers (``parent_helps``), with one BLAS thread too.

        So a result does not depend on which process computed it (a threaded
        BLAS sums in another order: the last bits of featurize's last batch
        depended on whether a worker or the parent computed it, so two runs of
        ``--nj 2`` differed). With ``nj == 1`` this process's BLAS is left as it is.
        """
        if not self._local_ready:
            if self.reuse_heap:
                _keep_freed_memory()
            if self.initializer is not None:
                self.initializer(*self.initargs)
            pinned_workers = self.pin_blas and self.executor is not None
            self._blas = (_blas_thread_controls() or []) if pinned_workers else []
            self._local_ready = True
        with _one_blas_thread(self._blas) if self._blas else contextlib.nullcontext():
            return func(item, None) if self.slot_bytes > 0 else func(item)

    def _dead_worker(self, exc: BaseException) -> AsctoolError:
        where = f"{self.where}: " if self.where is not None else ""
        article = "an" if self.name[:1].lower() in "aeiou" else "a"
        return AsctoolError(f"{where}{article} {self.name} worker process died ({exc}); run with --nj 1 to see why")

    def imap(self, func: Callable, items: Iterable[Any], *, parent_helps: bool = False) -> Iterator[Any]:
        """Yield ``func(item)`` for every item, in input order.

        Parameters
        ----------
        func : a module-level function of one item (two with ``slot_bytes``)
        items : the tasks (each pickled to a worker)
        parent_helps : while no worker has delivered a result yet (a fork
            server takes a good part of a second to import numpy and scipy),
            compute items from the end of the list in this process; results
            then come out of input order, so each must say which item it
            belongs to

        Yields
        ------
        result : ``func(item)``; with ``slot_bytes``, the pair ``(result, slot)``:
            the task ran as ``func(item, slot)`` where ``slot`` was a writable
            memoryview of ``slot_bytes`` bytes of shared memory, and the same
            bytes come back here, valid until the next result is asked for.
            ``slot`` is None when there is no shared memory (``nj == 1``,
            fork-server workers, a task run in this process): then ``func``
            must return its data in ``result``.

        Raises
        ------
        AsctoolError
            a worker process died; exceptions raised by ``func`` come as themselves.
        """
        from concurrent.futures.process import BrokenProcessPool

        queue = deque(items)
        with_slots = self.slot_bytes > 0
        if self.executor is None:
            for item in queue:
                check_interrupted()
                result = self._run_here(func, item)
                yield (result, None) if with_slots else result
            return
        pending: deque = deque()  # (future, slot or None)

        def refill() -> None:
            while queue and len(pending) < self.max_pending:
                item = queue.popleft()
                if with_slots:
                    slot = self._free_slots.popleft() if self.shared is not None else None
                    offset = None if slot is None else slot * self.slot_bytes
                    future = self.executor.submit(_call_with_slot, func, item, offset, self.slot_bytes)
                else:
                    slot, future = None, self.executor.submit(_call, func, item)
                pending.append((future, slot))

        delivered = False
        try:
            refill()
            while pending:
                if parent_helps and not delivered and queue and not pending[0][0].done():
                    result = self._run_here(func, queue.pop())
                    yield (result, None) if with_slots else result
                    continue
                check_interrupted()  # an interrupt whose exception was lost (see asctool.io)
                future, slot = pending.popleft()
                try:
                    result = future.result()
                except _WorkerStopped as exc:  # SIGTERM sent to a worker
                    import signal

                    raise self._dead_worker(f"stopped by {signal.Signals(exc.args[0]).name}") from None
                delivered = True
                refill()
                if not with_slots:
                    yield result
                elif slot is None:
                    yield result, None
                else:
                    offset = slot * self.slot_bytes
                    yield result, memoryview(self.shared)[offset:offset + self.slot_bytes]
                    self._free_slots.append(slot)  # the consumer is done with it
        except BrokenProcessPool as exc:
            raise self._dead_worker(exc) from None
        finally:
            for future, slot in pending:  # the consumer stopped early or a task failed
                if (future.cancel() or future.done()) and slot is not None:
                    self._free_slots.append(slot)  # (a running task keeps its slot)
