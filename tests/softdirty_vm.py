"""Running pytest cases inside a qemu guest whose kernel has soft-dirty
(../shared/tools/softdirty-vm.sh), for this machine's kernel has none:
the soft-dirty tracker is exercised for real there, never faked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

IN_GUEST = os.environ.get("SDVM_GUEST") == "1"
# The project's shared tools sit beside the checkout here; CI's clone may be elsewhere.
SOFTDIRTY_VM = next((p for p in (Path(os.environ.get("INCR_SOFTDIRTY_VM", "/nonexistent")),
                                 Path(__file__).resolve().parents[2] / "shared" / "tools" / "softdirty-vm.sh",
                                 Path("/work/shared/tools/softdirty-vm.sh")) if p.exists()),
                    Path("/work/shared/tools/softdirty-vm.sh"))


def run_in_guest(test_file: Path, selector: str, env: dict[str, str] | None = None,
                 timeout: float = 900) -> str:
    """`pytest -k selector test_file` in the guest; its output.  Skips (saying why) where the guest
    cannot be had; fails the calling test when the cases fail or none ran."""
    if not SOFTDIRTY_VM.exists():
        pytest.skip(f"{SOFTDIRTY_VM} is not on this machine: soft-dirty is not exercised")
    if shutil.which("qemu-system-x86_64") is None or not any(Path("/tmp/sdvm-cache").glob("*/ready")):
        setup = subprocess.run(["bash", str(SOFTDIRTY_VM), "setup"], capture_output=True, text=True, timeout=900)
        if setup.returncode != 0:
            pytest.skip(f"soft-dirty VM setup failed: {setup.stderr.strip()[-300:]}")
    python = sys.executable          # the venv interpreter (not a pyenv shim: those cost seconds in the guest)
    argv = ["bash", str(SOFTDIRTY_VM), "run", "env", *(f"{k}={v}" for k, v in (env or {}).items()),
            python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", selector, str(test_file)]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=test_file.parents[1],
                         env={**os.environ, "SDVM_TIMEOUT": str(int(timeout))})
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert " passed" in out and "skipped" not in out.split("passed")[-1][:40], out[-1500:]
    return out
