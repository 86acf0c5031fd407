"""`incr bench`: each workload checkpointed and restored by incr, and by CRIU and DMTCP when they
are here, in one run, the engines interleaved run by run; per figure the median over the runs
and the ratios incr/peer taken pair-wise within a run (a noisy machine shifts both alike).

One trial = one workload, one engine, one repetition, from a fresh job and a fresh store:

* incr: the job's iterations/s untracked; a series of checkpoints (the first a full pass, then
  incremental, pre-copy on, the default) and the job's rate while tracked; checkpoints without
  pre-copy; one full checkpoint into a fresh store; the baselines on the job's own pages (zstd -1,
  the digest); then the job killed and restored from an early and from the newest checkpoint,
  each time until it runs again, and self-checked; the copy limit for as many bytes.
* a peer: a series of checkpoints (each a full dump, the job left running; at most
  PEER_CHECKPOINTS of them, as more say nothing new of a dump that is full every time), then
  the job killed and restored from the newest, self-checked.

Every checkpoint's downtime is taken twice: as the engine reports it, and as the job saw it
(its 1 ms probe thread's longest gap during the command)."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from incr.bench import baselines
from incr.bench.observe import CommandRun, Spread, percentile, run_observed
from incr.bench.peers import Peer, PeerFailed
from incr.bench.workloads import WORKLOADS, Running, Workload, WorkloadFailed
from incr.errors import IncrError
from incr.pagestore.digest import PAGE_SIZE

INCR = (sys.executable, "-m", "incr")
PR_SET_CHILD_SUBREAPER = 36
#: Checkpoints of a peer's series, at most: every one is a full dump (DMTCP with gzip: 5 s for
#: 256 MiB here), so a longer series adds run time, not information.
PEER_CHECKPOINTS = 5


class BenchFailed(IncrError):
    """A workload or an engine failed in a way the benchmark cannot measure around."""


@dataclass(frozen=True)
class Settings:
    workloads: tuple[str, ...]
    sizes_mib: tuple[int, ...]
    repeat: int
    checkpoints: int            # of the series; restored: #2 (early) and the newest (late)
    no_precopy: int             # checkpoints without pre-copy, after the series
    interval_s: float
    seed: int
    work_dir: Path
    peers: tuple[Peer, ...] = ()
    quick: bool = False
    rate_s: float = 3.0         # seconds over which the job's iterations/s are counted, tracked and not


@dataclass
class Checkpoint:
    """One checkpoint as measured."""

    mode: str                   # "first", "incremental", "no-precopy", "full"; peers: "dump"
    epoch: float                # when it started
    downtime_ms: float          # the engine's own account (None from a peer that cannot tell: -1)
    probe_ms: float             # the job's longest stall during the command
    wall_s: float
    bytes_added: int
    pages_dirty: int = 0
    total_ms: float = 0.0
    peak_rss_mb: float = 0.0
    peak_anon_mb: float = 0.0
    peak_file_mb: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in self.__dict__.items()}


@dataclass
class Trial:
    """One workload through one engine, one repetition."""

    workload: str
    size_mib: int
    engine: str
    repetition: int
    checkpoints: list[Checkpoint] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)
    tracker: str = ""           # incr's dirty-page tracker, as its checkpoints report it
    failed: str = ""            # why the trial could not finish (its figures are then left out)

    def series(self, *modes: str) -> list[Checkpoint]:
        return [c for c in self.checkpoints if c.mode in modes]

    def as_json(self) -> dict[str, Any]:
        return {"workload": self.workload, "size_mib": self.size_mib, "engine": self.engine,
                "repetition": self.repetition, "tracker": self.tracker, "failed": self.failed,
                "figures": {k: round(v, 4) for k, v in self.figures.items()},
                "checkpoints": [c.as_json() for c in self.checkpoints]}


Say = Callable[[str], None]


class Bench:
    """The run: trials in order, interleaving the engines within each repetition."""

    def __init__(self, settings: Settings, say: Say) -> None:
        self.settings = settings
        self.say = say
        # A job restored with --detach is orphaned when `incr restore` exits: it comes to us, the
        # nearest subreaper, to be reaped when the trial ends it (not to whoever runs us).
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise BenchFailed(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")
        self.trials: list[Trial] = []
        self.build_dir = settings.work_dir / "build"
        self.build_dir.mkdir(parents=True, exist_ok=True)

    def run(self) -> list[Trial]:
        s = self.settings
        engines = ["incr", *(p.name for p in s.peers)]
        total = len(s.workloads) * len(s.sizes_mib) * s.repeat * len(engines)
        done = 0
        for size in s.sizes_mib:
            for name in s.workloads:
                workload = WORKLOADS[name]
                # A warm-up: builds the workload and brings the page cache and the code in.
                self._warm_up(workload, size)
                for rep in range(s.repeat):
                    for engine in engines:
                        done += 1
                        self.say(f"[{done}/{total}] {name} {size} MiB, {engine}, run {rep + 1} of {s.repeat}")
                        trial = Trial(name, size, engine, rep)
                        where = self._fresh(f"{name}-{size}-{engine}-{rep}")
                        t0 = time.monotonic()
                        try:
                            if engine == "incr":
                                self._incr_trial(workload, trial, where)
                            else:
                                self._peer_trial(workload, trial, where,
                                                 next(p for p in s.peers if p.name == engine))
                        except (BenchFailed, WorkloadFailed, PeerFailed) as exc:
                            # The run goes on: one engine failing one workload is a result too.
                            trial.failed = str(exc)
                            self.say(f"{name} {size} MiB, {engine}, run {rep + 1}: FAILED: {exc}")
                        finally:
                            shutil.rmtree(where, ignore_errors=True)
                        trial.figures["trial_s"] = time.monotonic() - t0
                        self.trials.append(trial)
        return self.trials

    # -- incr ---------------------------------------------------------------------------

    def _warm_up(self, workload: Workload, size: int) -> None:
        run_dir = self._fresh(f"warm-{workload.name}-{size}")
        job = Running.start(workload, self.build_dir, run_dir, size, self.settings.seed)
        try:
            job.rate(0.2)
        finally:
            job.stop()
            shutil.rmtree(run_dir, ignore_errors=True)

    def _incr_trial(self, workload: Workload, trial: Trial, where: Path) -> None:
        s = self.settings
        store, full_store = where / "store", where / "store-full"
        job = Running.start(workload, self.build_dir, where / "job", trial.size_mib, s.seed)
        try:
            quiet_from = time.time()
            untracked = job.rate(s.rate_s)
            # What the probe sees with nothing done to the job: the machine's own noise, against
            # which its figures during checkpoints are read (they are not corrected by it).
            trial.figures["probe_quiet_ms"] = max(job.stalls(quiet_from, time.time()), default=0.0)
            ids = []
            for k in range(s.checkpoints):
                c, sid, trial.tracker = self._incr_checkpoint(job, store, "first" if k == 0 else "incremental")
                trial.checkpoints.append(c)
                ids.append(sid)
                if k == 0:
                    tracked = job.rate(s.rate_s)        # the tracker is armed from the first checkpoint on
                    trial.figures["tracking_slowdown"] = untracked / tracked if tracked else 0.0
                    trial.figures["iterations_s_untracked"] = untracked
                    trial.figures["iterations_s_tracked"] = tracked
                else:
                    time.sleep(s.interval_s)
            for _ in range(s.no_precopy):
                trial.checkpoints.append(self._incr_checkpoint(job, store, "no-precopy", "--no-precopy")[0])
                time.sleep(s.interval_s)
            trial.checkpoints.append(self._incr_checkpoint(job, full_store, "full")[0])
            pages, nonzero = baselines.read_job_pages(job.pid)
            base = baselines.measure_pages(pages)
            resident = nonzero * PAGE_SIZE
            del pages
            trial.figures.update(resident_mb=resident / 2**20, zstd_mb_s=base.zstd_mb_s,
                                 zstd_page_mb_s=base.zstd_page_mb_s, digest_mb_s=base.digest_mb_s,
                                 unzstd_page_mb_s=base.unzstd_page_mb_s,
                                 zstd_bytes_per_page=base.zstd_bytes_per_page)
            full = trial.series("full")[0]
            trial.figures["ingest_mb_s"] = full.pages_dirty * PAGE_SIZE / 1e6 / (full.total_ms / 1e3) \
                if full.total_ms else 0.0
            job.check()
            job.stop()
            # The newest first: a restore of an older one cuts the job's files back, and the newer
            # checkpoint is then on a branch of history left behind (incr refuses to restore it).
            trial.figures["restore_s"] = self._incr_restore(job, store, ids[-1], trial)
            trial.figures["restore_late_s"] = trial.figures["restore_s"]
            job.stop()
            early = ids[1] if len(ids) > 2 else ids[0]
            trial.figures["restore_early_s"] = self._incr_restore(job, store, early, trial)
            trial.figures["restore_late_checkpoint"] = len(ids)
            trial.figures["restore_early_checkpoint"] = ids.index(early) + 1
            trial.figures["copy_limit_s"] = baselines.copy_limit_s(resident)
        finally:
            job.stop()

    def _incr_checkpoint(self, job: Running, store: Path, mode: str, *flags: str) -> tuple[Checkpoint, str, str]:
        """One `incr checkpoint`, observed: the checkpoint, its id, the tracker it used."""
        epoch = time.time()
        res = run_observed([*INCR, "--store", str(store), "checkpoint", str(job.pid), "--json", *flags])
        if res.returncode != 0:
            raise BenchFailed(f"{job.workload.name}: {res.failed()}")
        info = json.loads(res.stdout)
        probe = _probe_stall(job, epoch)
        c = Checkpoint(mode, epoch, float(info["downtime_ms"]), probe, res.wall_s, int(info["bytes_stored"]),
                       int(info["pages_dirty"]), float(info["total_ms"]), res.peak_rss_mb, res.peak_anon_mb,
                       res.peak_file_mb)
        return c, str(info["id"]), str(info.get("tracker", ""))

    def _incr_restore(self, job: Running, store: Path, sid: str, trial: Trial) -> float:
        baselines.warm_free_memory(trial.size_mib << 20)
        res = run_observed([*INCR, "--store", str(store), "restore", "--id", sid, "--detach"])
        if res.returncode != 0:
            raise BenchFailed(f"{job.workload.name}: {res.failed()}")
        job.adopt(int(res.stdout.split()[-1]))
        self._note_restore_memory(trial, res)
        try:
            job.check()
        except WorkloadFailed as exc:
            raise BenchFailed(f"{job.workload.name}: restored from {sid[:12]} by incr, its self-check says: {exc}") \
                from None
        return res.wall_s

    @staticmethod
    def _note_restore_memory(trial: Trial, res: CommandRun) -> None:
        f = trial.figures
        f["restore_peak_rss_mb"] = max(f.get("restore_peak_rss_mb", 0.0), res.peak_rss_mb)
        f["restore_peak_anon_mb"] = max(f.get("restore_peak_anon_mb", 0.0), res.peak_anon_mb)
        f["restore_peak_file_mb"] = max(f.get("restore_peak_file_mb", 0.0), res.peak_file_mb)

    # -- peers --------------------------------------------------------------------------

    def _peer_trial(self, workload: Workload, trial: Trial, where: Path, peer: Peer) -> None:
        s = self.settings
        images = where / "images"
        images.mkdir()
        job = Running.start(workload, self.build_dir, where / "job", trial.size_mib, s.seed,
                            prefix=peer.launch_prefix(images))
        job.adopt(job.started_pid)          # the launcher execs the job: its host PID (DMTCP's are virtual)
        last = images
        count = min(s.checkpoints, PEER_CHECKPOINTS)
        try:
            for k in range(count):
                last = images / f"{k + 1}"
                last.mkdir()
                epoch = time.time()
                try:
                    pc = peer.checkpoint(job.pid, last)
                except PeerFailed as exc:
                    raise BenchFailed(f"{workload.name}: {peer.name} checkpoint failed: {exc}") from None
                probe = _probe_stall(job, epoch)
                trial.checkpoints.append(Checkpoint("dump", epoch, -1.0 if pc.frozen_ms is None else pc.frozen_ms,
                                                    probe, pc.wall_s, pc.bytes))
                if k + 1 < count:
                    time.sleep(s.interval_s)
            job.check()
            job.stop()
            baselines.warm_free_memory(trial.size_mib << 20)
            try:
                restored = peer.restore(last)
            except PeerFailed as exc:
                raise BenchFailed(f"{workload.name}: {peer.name} restore failed: {exc}") from None
            job.adopt(restored.pid)
            trial.figures["restore_s"] = restored.wall_s
            try:
                job.check()
            except WorkloadFailed as exc:
                raise BenchFailed(f"{workload.name}: restored by {peer.name}, its self-check says: {exc}") from None
        finally:
            job.stop()

    def _fresh(self, name: str) -> Path:
        path = self.settings.work_dir / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path


#: After a checkpoint returns, how long the job's probe thread is given to write down the stall
#: it has just come out of (it appends the line once it runs again, maybe after we return).
PROBE_GRACE_S = 0.05


def _probe_stall(job: Running, since: float) -> float:
    """The job's longest stall (ms) from `since` until now, as its probe saw it."""
    until = time.time()
    time.sleep(PROBE_GRACE_S)
    return max(job.stalls(since, until), default=0.0)


# -- the summary ---------------------------------------------------------------------------

def summarize(trials: Sequence[Trial], settings: Settings) -> dict[str, Any]:
    """Per workload (and size): medians over the repetitions, with their ranges, and per peer
    the pair-wise ratios incr/peer."""
    out: dict[str, Any] = {}
    keys = sorted({(t.workload, t.size_mib) for t in trials}, key=lambda k: (k[1], settings.workloads.index(k[0])))
    for name, size in keys:
        runs = [t for t in trials if (t.workload, t.size_mib, t.engine) == (name, size, "incr")]
        mine = [t for t in runs if not t.failed]
        entry = _incr_summary(mine)
        entry["failed"] = [t.failed for t in runs if t.failed]
        peers: dict[str, Any] = {}
        for peer in settings.peers:
            theirs = [t for t in trials if (t.workload, t.size_mib, t.engine) == (name, size, peer.name)]
            ok = [t for t in theirs if not t.failed]
            peers[peer.name] = _peer_summary(ok, mine) if ok else {}
            peers[peer.name]["failed"] = [t.failed for t in theirs if t.failed]
        entry["peers"] = peers
        out[name if len(settings.sizes_mib) == 1 else f"{name}@{size}M"] = entry
    return out


def _med(trials: Sequence[Trial], pick: Callable[[Trial], float]) -> Spread:
    return Spread.of([pick(t) for t in trials])


def _p(modes: Sequence[str], q: float, attr: str = "downtime_ms") -> Callable[[Trial], float]:
    return lambda t: percentile([getattr(c, attr) for c in t.series(*modes)], q)


def _mean(modes: Sequence[str], attr: str) -> Callable[[Trial], float]:
    def pick(t: Trial) -> float:
        values = [float(getattr(c, attr)) for c in t.series(*modes)]
        return sum(values) / len(values) if values else 0.0
    return pick


def _figure(key: str) -> Callable[[Trial], float]:
    return lambda t: t.figures.get(key, 0.0)


def _incr_summary(trials: Sequence[Trial]) -> dict[str, Any]:
    spreads: dict[str, Spread] = {
        "downtime_ms_p50.incremental": _med(trials, _p(["incremental"], 50)),
        "downtime_ms_p50.no_precopy": _med(trials, _p(["no-precopy"], 50)),
        "downtime_ms_p50.full": _med(trials, _p(["full"], 50)),
        "downtime_ms_p50.first": _med(trials, _p(["first"], 50)),
        "downtime_ms_p50.probe": _med(trials, _p(["incremental"], 50, "probe_ms")),
        "downtime_ms_p50.probe_full": _med(trials, _p(["full"], 50, "probe_ms")),
        "downtime_ms_p99.incremental": _med(trials, _p(["incremental"], 99)),
        "downtime_ms_p99.no_precopy": _med(trials, _p(["no-precopy"], 99)),
        "downtime_ms_p99.probe": _med(trials, _p(["incremental"], 99, "probe_ms")),
        "bytes_per_checkpoint.incremental": _med(trials, _mean(["incremental"], "bytes_added")),
        "bytes_per_checkpoint.no_precopy": _med(trials, _mean(["no-precopy"], "bytes_added")),
        "bytes_per_checkpoint.full": _med(trials, _mean(["full"], "bytes_added")),
        "checkpoint_wall_s.incremental": _med(trials, _mean(["incremental"], "wall_s")),
        "checkpoint_wall_s.full": _med(trials, _mean(["full"], "wall_s")),
        "incr_peak_rss_mb": _med(trials, lambda t: max([c.peak_rss_mb for c in t.checkpoints]
                                                       + [t.figures.get("restore_peak_rss_mb", 0.0)])),
        "incr_peak_anon_mb": _med(trials, lambda t: max([c.peak_anon_mb for c in t.checkpoints]
                                                        + [t.figures.get("restore_peak_anon_mb", 0.0)])),
        "incr_peak_file_mb": _med(trials, lambda t: max([c.peak_file_mb for c in t.checkpoints]
                                                        + [t.figures.get("restore_peak_file_mb", 0.0)])),
    }
    for key in ("ingest_mb_s", "zstd_mb_s", "zstd_page_mb_s", "unzstd_page_mb_s", "digest_mb_s", "restore_s",
                "restore_early_s", "restore_late_s", "copy_limit_s", "tracking_slowdown", "resident_mb",
                "iterations_s_untracked", "iterations_s_tracked", "probe_quiet_ms"):
        spreads[key] = _med(trials, _figure(key))
    dirty_pages = _med(trials, _mean(["incremental"], "pages_dirty")).median
    zstd_page = _med(trials, lambda t: t.figures.get("zstd_bytes_per_page", 0.0)).median
    entry = _nest({k: v.median for k, v in spreads.items()})
    entry["ranges"] = _nest({k: [v.low, v.high] for k, v in spreads.items()})
    # The pages an incremental checkpoint found dirty, at the zstd -1 size of the job's pages on average.
    entry["zstd_bytes_changed_estimate"] = dirty_pages * zstd_page
    entry["tracker"] = sorted({t.tracker for t in trials if t.tracker})
    entry["restore_late_vs_early"] = _ratio(spreads["restore_late_s"].median, spreads["restore_early_s"].median)
    entry["restore_vs_copy_limit"] = _ratio(spreads["restore_s"].median, spreads["copy_limit_s"].median)
    entry["ingest_vs_zstd"] = _ratio(spreads["ingest_mb_s"].median, spreads["zstd_mb_s"].median)
    entry["checkpoints_restored"] = {"early": _med(trials, _figure("restore_early_checkpoint")).median,
                                     "late": _med(trials, _figure("restore_late_checkpoint")).median}
    entry["series"] = [t.as_json() for t in trials]
    return entry


def _peer_summary(theirs: Sequence[Trial], mine: Sequence[Trial]) -> dict[str, Any]:
    """A peer's medians and, run by run, incr's figure over the peer's (below 1: incr is ahead)."""
    figures: dict[str, Callable[[Trial], float]] = {
        "downtime_ms_p50": _p(["dump"], 50), "probe_ms_p50": _p(["dump"], 50, "probe_ms"),
        "bytes_per_checkpoint": _mean(["dump"], "bytes_added"), "checkpoint_wall_s": _mean(["dump"], "wall_s"),
        "restore_s": _figure("restore_s"),
    }
    ours: dict[str, Callable[[Trial], float]] = {
        "downtime_ms_p50": _p(["incremental"], 50), "probe_ms_p50": _p(["incremental"], 50, "probe_ms"),
        "bytes_per_checkpoint": _mean(["incremental"], "bytes_added"),
        "checkpoint_wall_s": _mean(["incremental"], "wall_s"),
        "restore_s": _figure("restore_s"),
    }
    entry: dict[str, Any] = {k: _med(theirs, f).median for k, f in figures.items()}
    by_rep = {t.repetition: t for t in mine}
    ratios: dict[str, float] = {}
    for key, theirs_of in figures.items():
        pairs = [_ratio(ours[key](by_rep[t.repetition]), theirs_of(t)) for t in theirs if t.repetition in by_rep]
        ratios[key] = Spread.of([r for r in pairs if r > 0]).median
    entry["incr_over_peer"] = ratios
    entry["series"] = [t.as_json() for t in theirs]
    return entry


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 and a >= 0 else 0.0


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """{"a.b": 1} -> {"a": {"b": 1}}."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


# -- the machine ---------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    """What the figures depend on: cores, kernel, memory, load, incr's version and commit."""
    from incr import __version__
    mem = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal:")), "0")
    return {"cores": os.cpu_count(), "kernel": os.uname().release, "memory_gib": round(int(mem) / 2**20, 1),
            "load_avg": list(os.getloadavg()), "incr_version": __version__, "commit": _commit(),
            "python": sys.version.split()[0], "cpu": _cpu_model()}


def _commit() -> str:
    here = Path(__file__).resolve().parents[2]
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(["git", "-C", str(here), "describe", "--always", "--dirty"], capture_output=True,
                             text=True, check=True)
        return out.stdout.strip()
    return "unknown"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return os.uname().machine


@contextlib.contextmanager
def peers_closed(peers: Sequence[Peer]) -> Iterator[None]:
    try:
        yield
    finally:
        for p in peers:
            with contextlib.suppress(Exception):
                p.close()
