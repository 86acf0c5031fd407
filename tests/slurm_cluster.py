"""A real single-node Slurm for the tests: munged, slurmctld and slurmd on localhost, each with its
own state directory, socket and ports, started as root and stopped by PID however the test ends.

The set-up measured on this machine is /work/shared/notes/slurm-single-node.md: a private munge
socket (there is no /run/munge without systemd), proctrack/linuxproc (no cgroups needed).  A requeued
job waits cred_expire + 1 s and then for a pass of the scheduler: cred_expire=5 (the least Slurm
takes; below it is 120) and sched_interval=1 (60 by default) make that ~6 s instead of ~2 min."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import reap_orphans

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scancel", "scontrol")
APT_PACKAGES = ("slurm-wlm", "munge")


class SlurmCluster:
    """One running cluster: `env` is what a client needs (SLURM_CONF); jobs run as root."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.conf = base / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self.daemons: dict[str, subprocess.Popen[bytes]] = {}
        self.munged_pid: int | None = None

    # -- clients ---------------------------------------------------------------------------------

    def client(self, *argv: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None,
               check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60, cwd=cwd,
                                env=dict(self.env, **(env or {})), stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, argv))} failed ({result.returncode}): "
                                 f"{result.stderr.strip()}\n{self.logs()}")
        return result

    def sbatch(self, script: Path, *args: str, cwd: Path, env: dict[str, str] | None = None) -> int:
        """Submit from `cwd` (the job's SLURM_SUBMIT_DIR and working directory); the job's id."""
        result = self.client("sbatch", "--parsable", script, *args, env=env, cwd=cwd)
        return int(result.stdout.strip().split(";")[0])

    def job(self, job_id: int) -> dict[str, str]:
        """`scontrol show job` as a dict (JobState, RestartCnt, ...); {} once slurmctld forgot it."""
        result = self.client("scontrol", "show", "job", "-o", str(job_id), check=False)
        if result.returncode != 0:
            return {}
        return dict(re.findall(r"(\w+)=(\S*)", result.stdout))

    def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float,
                 job_log: Path | None = None) -> None:
        """Poll; on timeout fail with the daemons' logs and the job's own (`job_log`)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{self.logs(job_log)}")
            time.sleep(0.1)

    def wait_job_state(self, job_id: int, states: set[str], timeout: float,
                       job_log: Path | None = None) -> dict[str, str]:
        info: dict[str, str] = {}

        def reached() -> bool:
            nonlocal info
            info = self.job(job_id)
            return info.get("JobState") in states

        self.wait_for(reached, f"job {job_id} to be {'/'.join(sorted(states))} (it is {info.get('JobState')})",
                      timeout, job_log)
        return info

    def logs(self, job_log: Path | None = None) -> str:
        """The daemons' logs' tails (and a job's), for a failure message."""
        parts = []
        for log in sorted((self.base / "log").glob("*.log")) + ([job_log] if job_log else []):
            lines = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else ["(none)"]
            parts.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(parts)

    # -- daemons ---------------------------------------------------------------------------------

    def start(self) -> None:
        for sub in ("munge", "state", "spool", "log"):
            (self.base / sub).mkdir(mode=0o700)
        self._start_munged()
        self.conf.write_text(slurm_conf(self.base, socket.gethostname().split(".")[0], *free_ports(2)))
        for name in ("slurmctld", "slurmd"):
            log = open(self.base / "log" / f"{name}.stdout", "wb")  # noqa: SIM115 - the daemon holds it
            self.daemons[name] = subprocess.Popen([name, "-D"], env=self.env, stdin=subprocess.DEVNULL,
                                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
        self.wait_for(self._node_idle, "the node to be idle (sinfo)", timeout=60)

    def _start_munged(self) -> None:
        key = self.base / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        b = self.base
        subprocess.run(["munged", "--force", f"--socket={b}/munge/munge.sock", f"--key-file={key}",
                        f"--pid-file={b}/munged.pid", f"--log-file={b}/log/munged.log",
                        f"--seed-file={b}/munged.seed"], check=True, capture_output=True, timeout=30)
        # munged daemonizes: its PID file is written before the parent returns.
        self.munged_pid = int((b / "munged.pid").read_text())

    def _node_idle(self) -> bool:
        for name, daemon in self.daemons.items():
            if daemon.poll() is not None:
                pytest.fail(f"{name} exited with {daemon.returncode} at start\n{self.logs()}")
        result = self.client("sinfo", "-h", "-o", "%T", check=False)
        return result.returncode == 0 and result.stdout.strip() == "idle"

    def stop(self) -> None:
        """Cancel every job, end every process of the cluster by PID, remove its state."""
        if self.daemons.get("slurmctld") is not None and self.daemons["slurmctld"].poll() is None:
            with contextlib.suppress(Exception):
                self.client("scancel", "--full", "--user=root", check=False)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and self.client("squeue", "-h", check=False).stdout.strip():
                    time.sleep(0.1)
        for daemon in self.daemons.values():
            stop_process(daemon)
        # What outlived them (a job's process its step lost, a stuck slurmstepd) has our SLURM_CONF.
        for pid in processes_with_env("SLURM_CONF", str(self.conf)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.munged_pid is not None:
            stop_pid(self.munged_pid)
        reap_orphans()      # slurmstepd, slurmscriptd and munged daemonize: the suite, a subreaper, gets them
        shutil.rmtree(self.base, ignore_errors=True)


def slurm_conf(base: Path, host: str, ctld_port: int, slurmd_port: int) -> str:
    cpus = min(os.cpu_count() or 1, 2)
    return f"""\
ClusterName=incrtest
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={base}/munge/munge.sock,cred_expire=5
SchedulerParameters=sched_interval=1
MailProg=/bin/true
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmctldPidFile={base}/slurmctld.pid
SlurmdPidFile={base}/slurmd.pid
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool
SlurmctldLogFile={base}/log/slurmctld.log
SlurmdLogFile={base}/log/slurmd.log
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} Sockets=1 CoresPerSocket={cpus} ThreadsPerCore=1 \
RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def free_ports(n: int) -> list[int]:
    """Ports nobody listens on now (another cluster of another test run takes others)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def processes_with_env(name: str, value: str) -> list[int]:
    wanted = f"{name}={value}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if wanted in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
    return pids


def stop_process(p: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the daemon's process group (its own session): slurmctld told alone waits 15 s for
    its helper slurmscriptd after a job has run; SIGKILL if that is not enough."""
    if p.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=15)


def stop_pid(pid: int) -> None:
    """End a process that is not our child (munged daemonized), SIGKILL if SIGTERM is not enough."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    if state == "Z":        # a zombie of ours: reap it
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def ensure_installed() -> None:
    """`make test` installs slurm-wlm and munge; a bare pytest run installs them the same way."""
    if all(shutil.which(b) for b in DAEMONS + CLIENTS):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("Slurm is not installed and cannot be here (needs root and apt-get for slurm-wlm, munge)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env)
    result = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *APT_PACKAGES],
                            capture_output=True, text=True, env=env)
    if result.returncode != 0 or not all(shutil.which(b) for b in DAEMONS + CLIENTS):
        pytest.skip(f"apt-get could not install {' '.join(APT_PACKAGES)}: {result.stderr.strip()[-300:]}")


@pytest.fixture
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A running single-node cluster; everything of it is stopped and removed after the test."""
    if os.geteuid() != 0:
        pytest.skip("a single-node Slurm with jobs run as root needs root")
    ensure_installed()
    # Short: the munge socket's path must fit in sun_path (108 bytes).
    cluster = SlurmCluster(Path(tempfile.mkdtemp(prefix="incr-slurm-")))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
