# Everything a fresh machine needs, by package name; see README.md.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: all venv test test-deps demo lint proto peers clean

all: venv

$(STAMP): pyproject.toml setup.py native/build_native.py native/incr_native.c native/incr_pages.c native/incr_digest.c native/incr_native.h
	@command -v gcc >/dev/null || { apt-get update -qq && apt-get install -y -q gcc; }
	@test -e /usr/include/zstd.h || { apt-get update -qq && apt-get install -y -q libzstd-dev; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@# Bytecode written once: with PYTHONDONTWRITEBYTECODE set, every incr command compiled its
	@# imports again (0.35 s of each command here).
	$(PY) -m compileall -q incr engine scheduler
	touch $(STAMP)

venv: $(STAMP)

test: lint test-deps
	$(PY) -m pytest -q --durations=30 tests

# tests/test_slurm.py runs a single-node Slurm: Debian's slurm-wlm and munge (no daemon is started here).
# tests/test_inet.py takes the network lock: Debian's nftables.  tests/test_mpi.py runs MPICH and Open
# MPI jobs: Debian's packages, and mpi4py built against MPICH from PyPI into a cache (Debian's is Open MPI's).
MPI4PY_MPICH ?= $(HOME)/.cache/incr/mpi4py-mpich
test-deps: $(STAMP)
	@command -v mpiexec.mpich >/dev/null && command -v mpirun.openmpi >/dev/null && \
	  test -e /usr/lib/python3/dist-packages/mpi4py || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends mpich libmpich-dev openmpi-bin libopenmpi-dev \
	    python3-mpi4py >/dev/null; } || \
	  echo "make: the MPI packages could not be installed: tests/test_mpi.py will say so and skip"
	@test -d $(MPI4PY_MPICH)/mpi4py || ! command -v mpicc.mpich >/dev/null || \
	  MPICC=mpicc.mpich $(PY) -m pip install -q --no-binary mpi4py --target $(MPI4PY_MPICH) mpi4py || \
	  echo "make: mpi4py could not be built for MPICH: tests/test_mpi.py will say so and skip"
	@command -v nft >/dev/null || test -x /usr/sbin/nft || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends nftables >/dev/null; } || \
	  echo "make: nftables could not be installed: tests/test_inet.py will say so and skip"
	@command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null; } || \
	  echo "make: slurm-wlm and munge could not be installed: tests/test_slurm.py will say so and skip"

# mypy sees the package as installed: engine/ and scheduler/ inside incr/.
lint: $(STAMP)
	$(PY) -m ruff check incr engine scheduler tests benchmarks
	rm -rf build/typecheck && mkdir -p build/typecheck/incr
	for f in incr/*; do ln -s ../../../$$f build/typecheck/incr/; done
	ln -s ../../../engine build/typecheck/incr/engine
	ln -s ../../../scheduler build/typecheck/incr/scheduler
	$(PY) -m mypy

demo: $(STAMP)
	PATH=$(abspath $(VENV))/bin:$$PATH bash examples/demo.sh

# Regenerate incr/proto/*_pb2.py(i) from the .proto schema of record.
proto:
	$(PY) -m pip install -q -e '.[dev]'
	cd incr/proto && ../../$(PY) -m grpc_tools.protoc -I. --python_out=. --pyi_out=. *.proto
	sed -i 's/^import \([a-z_]*_pb2\)/from . import \1/' incr/proto/*_pb2.py

# The peers of `incr bench --compare`, CRIU 4.2 and DMTCP 4.2.0, built from source into
# ${INCR_PEERS_DIR:-~/.cache/incr/peers} (benchmarks/README.md); not part of `make test`.
peers:
	bash benchmarks/peers/build.sh all

clean:
	rm -rf $(VENV) build *.egg-info incr/_native*.so
