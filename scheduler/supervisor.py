"""The supervisor of `incr run`, `incr attach` and `incr restore --every`: checkpoints a job on a
schedule until it ends, and ends with its exit status.

Threads: the main thread waits for the job's end (polling its pidfd, never wait(): a wait in any
thread of ours would take the ptrace stops a checkpoint waits for), and for signals (through a
wakeup pipe).  APScheduler's one worker thread runs the scheduled checkpoints and pre-dump rounds;
the control socket's threads run requested ones; a final checkpoint runs in a thread of its own,
so that the main thread can stop waiting for it at the deadline.  All engine work is under one
lock: one checkpoint or pre-dump at a time, each wholly inside one thread (ptrace is per thread).

Schedule: a checkpoint job on an IntervalTrigger(D), max_instances=1 and coalesce=True (ticks
missed while a checkpoint ran are one run, not a queue), rescheduled at the end of every
checkpoint, whatever started it: the next one is due D after the end of the previous one.  A
pre-dump job on IntervalTrigger(D/3), rescheduled with it, skips while rounds do not pay
(policy.PredumpGate) or when the checkpoint is due soon.

Signals: SIGTERM: a final checkpoint (waited for up to --final-deadline), then the job gets
SIGTERM and the supervisor waits for its end.  SIGUSR1 (Slurm's warning before the time limit,
`sbatch --signal=B:USR1@T`): a final checkpoint, and the job runs on, still supervised, the
schedule restarting from that checkpoint -- a supervisor that exited would end a batch script, and
with it the job.  SIGINT/SIGQUIT: a job sharing our process group had it from the terminal too;
any other is sent it (attach: the supervisor stops, the job runs on).  SIGHUP/SIGUSR2: passed on.

If the supervisor is killed (SIGKILL, even mid-checkpoint), the job runs on: that is the crash
model of every incr command (docs/crash-model.md); the next command sweeps what was left in it.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from incr import api, maintenance
from incr.engine import ptrace
from incr.engine.errors import EngineError
from incr.errors import IncrError, UsageError
from incr.pagestore import StoreError, gc
from incr.scheduler import control
from incr.scheduler.policy import ROUNDS_PER_INTERVAL, Interval, PredumpGate
from incr.timespec import local_short
from incr.units import size

log = logging.getLogger(__name__)

FORWARDED = (signal.SIGHUP, signal.SIGUSR2)
TERMINAL = (signal.SIGINT, signal.SIGQUIT)
HANDLED = (signal.SIGTERM, signal.SIGUSR1, *FORWARDED, *TERMINAL)
DEFAULT_FINAL_DEADLINE = 25.0


@dataclass
class Settings:
    store: Path
    interval: Interval
    keep: gc.Policy = field(default_factory=gc.Policy)
    tracker: str = "auto"
    log_file: Path | None = None
    final_deadline: float = DEFAULT_FINAL_DEADLINE
    predump: bool = True
    ghost_limit: int | None = None     # api.checkpoint's (None: its default)
    external: bool = False             # api.checkpoint's


class Job:
    """The supervised tree, by its root: `child` when it is ours (its status can be had)."""

    def __init__(self, pid: int, *, child: bool, popen: subprocess.Popen[bytes] | None = None,
                 wait_pid: int = 0) -> None:
        self.pid = pid
        self.child = child
        self.popen = popen                  # kept: a Popen collected unwaited would waitpid() it later
        self.wait_pid = wait_pid or pid
        try:
            self.pidfd = os.pidfd_open(self.wait_pid)
        except ProcessLookupError:
            raise UsageError(f"no process {pid}") from None
        self.same_group = _same_group(pid)
        if child:
            ptrace.keep_exit_status(self.wait_pid)    # a checkpoint's wait must not take its status

    @classmethod
    def start(cls, argv: list[str]) -> Job:
        """CMD as our child: stdio, environment and cwd ours; no descriptor of incr's but 0, 1, 2."""
        try:
            popen = subprocess.Popen(argv, close_fds=True)
        except OSError as exc:
            raise CommandFailed.of(argv[0], exc) from None
        return cls(popen.pid, child=True, popen=popen)

    def ended(self) -> bool:
        return bool(select.select([self.pidfd], [], [], 0)[0])

    def status(self) -> int | None:
        """Its exit status as a shell gives it (128+N: signal N); None when it cannot be had."""
        if not self.child:
            return None
        try:
            result = os.waitid(os.P_PIDFD, self.pidfd, os.WEXITED)
        except ChildProcessError:
            return None                     # taken by a checkpoint's wait: it ended while being frozen
        if result is None:
            return None
        if self.popen is not None:
            self.popen.returncode = result.si_status
        if result.si_code == os.CLD_EXITED:
            return result.si_status
        return 128 + result.si_status

    def signal(self, signo: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signo)

    def close(self) -> None:
        ptrace.keep_exit_status(self.wait_pid, False)
        with contextlib.suppress(OSError):
            os.close(self.pidfd)


class _NoJob(Job):
    """Before the job is started."""

    def __init__(self) -> None:
        self.pid, self.child, self.popen, self.wait_pid, self.pidfd, self.same_group = 0, False, None, 0, -1, False

    def ended(self) -> bool:
        return False


_NO_JOB = _NoJob()


def _same_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == os.getpgrp()
    except ProcessLookupError:
        return False


class CommandFailed(IncrError):
    """The job's command could not be started: not found, exit code 127 as a shell's."""

    exit_code = 127

    def __init__(self, command: str, exc: OSError) -> None:
        super().__init__(f"cannot run {command}: {exc.strerror or exc}")

    @staticmethod
    def of(command: str, exc: OSError) -> CommandFailed:
        return CommandNotExecutable(command, exc) if isinstance(exc, PermissionError) else CommandFailed(command, exc)


class CommandNotExecutable(CommandFailed):
    """The job's command is there but cannot be run: exit code 126 as a shell's."""

    exit_code = 126


@dataclass
class State:
    checkpoints: int = 0
    predumps: int = 0
    failures: int = 0
    last: api.CheckpointInfo | None = None
    last_error: str = ""
    started: float = field(default_factory=time.time)


class Supervisor:
    """`job`: the job, or how to start it (then it starts once signals are handled: a SIGTERM
    that came between its start and the handlers would leave it unsupervised)."""

    def __init__(self, job: Job | Callable[[], Job], settings: Settings, *, attached: bool = False) -> None:
        self._start_job = job if callable(job) else None
        self.job: Job = job if isinstance(job, Job) else _NO_JOB
        self.settings = settings
        self.attached = attached
        self.state = State()
        self.gate = PredumpGate(enabled=settings.predump)
        self.engine = threading.Lock()
        self.stopping = False            # after SIGTERM: no more scheduled work
        self._out_lock = threading.Lock()
        self._out: TextIO = sys.stderr
        self._log_handle: TextIO | None = None
        self.scheduler: BackgroundScheduler | None = None
        self.server: control.Server | None = None

    # -- output -------------------------------------------------------------------

    def say(self, text: str) -> None:
        line = f"incr: {local_short(time.time())} {text}\n"
        with self._out_lock, contextlib.suppress(OSError, ValueError):
            self._out.write(line)
            self._out.flush()

    def _open_log(self) -> None:
        if self.settings.log_file is not None:
            try:
                self._log_handle = open(self.settings.log_file, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise IncrError(f"cannot open log file {self.settings.log_file}: {exc.strerror or exc}") from None
            self._out = self._log_handle

    # -- the engine's work, one at a time -------------------------------------------

    def checkpoint(self, why: str, *, kill: bool = False, timeout: float | None = None,
                   hold_signals: frozenset[int] = frozenset(), ghost_limit: int | None = None,
                   external: bool = False, tcp_established: bool = False) -> api.CheckpointInfo:
        """Take a checkpoint now (waiting for the one under way, up to `timeout`); log it, apply
        retention, restart the schedule from its end.  Raises the failure's error.  `hold_signals`:
        left out of it (api.checkpoint); `ghost_limit`, `external`: this once, instead of the settings';
        `tcp_established`: this once (api.checkpoint)."""
        if not self.engine.acquire(timeout=-1 if timeout is None else timeout):
            raise IncrError(f"another checkpoint of PID {self.job.pid} is still under way")
        try:
            info = api.checkpoint(self.job.pid, self.settings.store, kill=kill, tracker=self.settings.tracker,
                                  hold_signals=hold_signals, ghost_limit=ghost_limit or self.settings.ghost_limit,
                                  external=external or self.settings.external, tcp_established=tcp_established)
            self._committed(info, why)
            return info
        except (IncrError, EngineError, StoreError, OSError) as exc:
            self.state.failures += 1
            self.state.last_error = str(exc)
            if not self.job.ended():
                self.say(f"{why} checkpoint of PID {self.job.pid} failed: {exc}")
            raise
        finally:
            self.engine.release()
            self._reschedule()

    def _committed(self, info: api.CheckpointInfo, why: str) -> None:
        s = info.stats
        self.state.checkpoints += 1
        self.state.last = info
        line = (f"checkpoint {info.id[:12]} of PID {self.job.pid} ({why}): downtime {s.downtime_ms:.1f} ms, "
                f"{size(s.bytes_stored)} added, {s.pages_dirty} of {s.pages_total} pages dirty, "
                f"total {s.total_ms / 1e3:.2f} s")
        if self.settings.interval.auto:
            self.settings.interval.measured(s.total_ms / 1e3)
            line += f"; next {self.settings.interval.describe()}"
        stopped = self.gate.after_checkpoint(s.pages_dirty)
        line += self._retain()
        self.say(line)
        left_out = info.signals_left_out
        if left_out:
            signals = ", ".join(f"{signal.Signals(signo).name} of PID {pid}" for pid, signo in left_out)
            self.say(f"checkpoint {info.id[:12]} leaves out {signals}, sent with the supervisor's: a restore "
                     "of it continues the job")
        if stopped:
            self.say(f"pre-dump rounds stop: {stopped}")

    def _retain(self) -> str:
        if self.settings.keep.empty():
            return ""
        try:
            result = maintenance.forget(self.settings.store, policy=self.settings.keep, prune=True)
        except (IncrError, StoreError, OSError) as exc:
            return f"; retention failed: {exc}"
        kept = sum(1 for e in result.plan.keep if e.kind == "checkpoint" and e.group == str(self.job.pid))
        freed = result.prune.bytes_freed if result.prune else 0
        return f"; forgot {result.removed}, {size(freed)} freed, {kept} kept"

    def predump(self) -> None:
        """A pre-dump round, when rounds pay and the checkpoint is not due soon."""
        if self.stopping or not self.gate.due(self.state.checkpoints) or self._checkpoint_due_within(
                self.settings.interval.seconds() / (2 * ROUNDS_PER_INTERVAL)):
            return
        if not self.engine.acquire(blocking=False):
            return                                     # a checkpoint is under way: it does the work
        try:
            info = api.predump_round(self.job.pid, self.settings.store, tracker=self.settings.tracker)
        except (IncrError, EngineError, StoreError, OSError) as exc:
            if not self.job.ended():
                self.say(f"pre-dump round of PID {self.job.pid} failed: {exc}")
            return
        finally:
            self.engine.release()
        self.state.predumps += 1
        stopped = self.gate.after_round(info.stats.pages_dirty, info.stats.pages_total)
        log.info("pre-dump %s of PID %d: %d of %d pages dirty, %.2f s", info.id[:12], self.job.pid,
                 info.stats.pages_dirty, info.stats.pages_total, info.stats.total_ms / 1e3)
        if stopped:
            self.say(f"pre-dump rounds stop: {stopped}")

    def _scheduled(self) -> None:
        if self.stopping:
            return
        with contextlib.suppress(IncrError, EngineError, StoreError, OSError):
            self.checkpoint("scheduled")

    # -- the schedule -----------------------------------------------------------------

    def _start_scheduler(self) -> None:
        logging.getLogger("apscheduler").setLevel(logging.ERROR)     # its skipped/missed notes are ours to take
        sched = BackgroundScheduler(executors={"default": ThreadPoolExecutor(1)},
                                    job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        every = self.settings.interval.seconds()
        sched.add_job(self._scheduled, IntervalTrigger(seconds=every), id="checkpoint")
        if self.settings.predump:
            sched.add_job(self.predump, IntervalTrigger(seconds=every / ROUNDS_PER_INTERVAL), id="predump")
        sched.start()
        self.scheduler = sched

    def _reschedule(self) -> None:
        """The next checkpoint D after now (the end of the last one), the rounds with it."""
        sched = self.scheduler
        if sched is None or self.stopping:
            return
        every = self.settings.interval.seconds()
        with contextlib.suppress(Exception):         # shut down meanwhile (the job ended)
            sched.reschedule_job("checkpoint", trigger=IntervalTrigger(seconds=every))
            if self.settings.predump:
                sched.reschedule_job("predump", trigger=IntervalTrigger(seconds=every / ROUNDS_PER_INTERVAL))

    def next_due(self) -> float | None:
        sched = self.scheduler
        if sched is None or self.stopping:
            return None
        job = sched.get_job("checkpoint")
        when: datetime.datetime | None = job.next_run_time if job else None
        return when.timestamp() if when else None

    def _checkpoint_due_within(self, seconds: float) -> bool:
        due = self.next_due()
        return due is not None and due - time.time() < seconds

    # -- control requests -------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        last = self.state.last
        return {"pid": self.job.pid, "supervisor": os.getpid(), "store": str(self.settings.store.absolute()),
                "interval": self.settings.interval.seconds(), "interval_text": self.settings.interval.describe(),
                "checkpoints": self.state.checkpoints, "predumps": self.state.predumps,
                "predump_rounds": "on" if self.gate.enabled else "off", "failures": self.state.failures,
                "last_error": self.state.last_error, "last_id": last.id if last else None,
                "last_epoch": last.epoch if last else None, "next_due": self.next_due(),
                "started": self.state.started, "stopping": self.stopping}

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "status":
            return {"ok": True, "status": self.status()}
        if op == "checkpoint":
            store = request.get("store")
            if store and os.path.realpath(store) != os.path.realpath(self.settings.store):
                return {"ok": False, "error": f"PID {self.job.pid} is supervised by incr PID {os.getpid()}, which "
                                              f"checkpoints it into {self.settings.store.absolute()}, not {store}"}
            try:
                limit = request.get("ghost_limit")
                info = self.checkpoint("requested", kill=bool(request.get("kill")),
                                       ghost_limit=limit if isinstance(limit, int) and limit > 0 else None,
                                       external=request.get("external") is True,
                                       tcp_established=request.get("tcp_established") is True)
            except (IncrError, EngineError, StoreError, OSError) as exc:
                return {"ok": False, "error": str(exc)}
            return {"ok": True, "checkpoint": info.summary()}
        return {"ok": False, "error": f"unknown request {op!r}"}

    # -- the main thread -----------------------------------------------------------------

    def run(self) -> int:
        """Supervise until the job ends; the exit code for the supervisor."""
        self._open_log()
        try:
            with _signals_to_pipe() as wakeup:
                if self._start_job is not None:
                    self.job = self._start_job()
                self.server = control.Server(self.job.pid, self.handle)
                self._start_scheduler()
                self.say(f"supervising PID {self.job.pid}, checkpoints {self.settings.interval.describe()} "
                         f"into {self.settings.store}")
                return self._loop(wakeup)
        finally:
            self._shutdown()

    def _loop(self, wakeup: int) -> int:
        poller = select.poll()
        poller.register(self.job.pidfd, select.POLLIN)
        poller.register(wakeup, select.POLLIN)
        while True:
            ready = {fd for fd, _ in poller.poll()}
            if self.job.pidfd in ready:
                return self._ended()
            if wakeup in ready:
                for signo in os.read(wakeup, 64):
                    code = self._on_signal(signo)
                    if code is not None:
                        return code

    def _on_signal(self, signo: int) -> int | None:
        if signo in (signal.SIGTERM, signal.SIGUSR1):
            name = signal.Signals(signo).name
            # Slurm signals the job with the supervisor: that stop request is not the job's state.
            self.final_checkpoint(f"final, {name}", hold_signals=frozenset({signo}))
            if signo == signal.SIGTERM:
                self.stopping = True
                if self.scheduler is not None:
                    self.scheduler.pause()
                self.say(f"sending SIGTERM to PID {self.job.pid} and waiting for it to end")
                self.job.signal(signal.SIGTERM)
            else:
                self.say(f"PID {self.job.pid} runs on, supervised")
        elif signo in TERMINAL:
            if self.attached:
                self.say(f"interrupted: PID {self.job.pid} runs on, no longer supervised")
                return 128 + signo
            if not self.job.same_group:
                self.job.signal(signo)
        elif signo in FORWARDED:
            self.job.signal(signo)
        return None

    def final_checkpoint(self, why: str, *, hold_signals: frozenset[int] = frozenset()) -> None:
        """A checkpoint now, waited for up to --final-deadline (it runs on in its thread if late);
        `hold_signals`: left out of it (api.checkpoint)."""
        deadline = self.settings.final_deadline
        outcome: list[str] = []

        def take() -> None:
            try:
                self.checkpoint(why, timeout=deadline, hold_signals=hold_signals)
                outcome.append("ok")
            except (IncrError, EngineError, StoreError, OSError) as exc:
                outcome.append(str(exc))

        worker = threading.Thread(target=take, name="incr-final-checkpoint", daemon=True)
        worker.start()
        worker.join(deadline)
        if not outcome:
            newest = self.state.last.id[:12] if self.state.last else "none"
            self.say(f"the final checkpoint did not commit within {deadline:g} s (--final-deadline); "
                     f"the newest committed is {newest}")
        elif outcome[0] != "ok" and not self.job.ended():
            self.say(f"no final checkpoint: {outcome[0]}")

    def _ended(self) -> int:
        self._stop_scheduler()
        with self.engine:                  # a checkpoint under way ends first: then nothing waits on the job
            code = self.job.status()
        if code is None and self.job.child:
            self.say(f"PID {self.job.pid} ended during a checkpoint's freeze, whose wait took its exit status")
            return 1
        if code is None:
            self.say(f"PID {self.job.pid} ended after {self.state.checkpoints} checkpoints (its exit status went to "
                     "its parent: a supervisor that is not the parent cannot have it)")
            return 0
        self.say(f"PID {self.job.pid} ended with status {code} after {self.state.checkpoints} checkpoints")
        return code

    def _stop_scheduler(self) -> None:
        self.stopping = True
        if self.scheduler is not None:
            with contextlib.suppress(Exception):
                self.scheduler.shutdown(wait=True)

    def _shutdown(self) -> None:
        self._stop_scheduler()
        if self.server is not None:
            self.server.close()
        if self.job is not _NO_JOB:
            self.job.close()
        if self._log_handle is not None:
            self._log_handle.close()


@contextlib.contextmanager
def _signals_to_pipe() -> Iterator[int]:
    """The handled signals written, one byte each, to a pipe the main loop reads."""
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def note(_signo: int, _frame: FrameType | None) -> None:
        pass                                 # the wakeup fd carries it

    previous: dict[int, Callable[[int, FrameType | None], Any] | int | signal.Handlers | None] = {}
    old_wakeup = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    try:
        for s in HANDLED:
            previous[s] = signal.signal(s, note)
        yield r
    finally:
        for signo, handler in previous.items():
            signal.signal(signo, handler if handler is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(old_wakeup)
        os.close(r)
        os.close(w)


def attach_checks(pid: int) -> None:
    """Refuse, in one line, a PID that cannot be supervised (before anything is started)."""
    if pid == os.getpid():
        raise UsageError("incr cannot supervise itself")
    if not os.path.exists(f"/proc/{pid}"):
        raise UsageError(f"no process {pid}")
    if control.supervised(pid):
        raise IncrError(f"PID {pid} is supervised already (`incr attach --status {pid}` says by whom)")
