#!/usr/bin/env bash
# `make demo`: run a job, checkpoint it mid-run, kill it, restore it, and show
# that it finishes with the same output as an uninterrupted run.
set -euo pipefail
cd "$(dirname "$0")/.."
work=demo-run
iters=1500
# The job must not inherit whatever descriptors the caller leaked to us.
for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null || true; done
rm -rf "$work" && mkdir -p "$work"
gcc -O2 -o "$work/solver" examples/solver.c -lm
export INCR_STORE="$work/store"
lines() { [ -f "$1" ] && wc -l < "$1" || echo 0; }

echo "== 1. the job, uninterrupted (reference output)"
"$work/solver" "$work/reference.txt" "$iters"
echo "   $(lines "$work/reference.txt") lines"

echo "== 2. the same job, checkpointed at iteration ~500 while it runs"
"$work/solver" "$work/out.txt" "$iters" < /dev/null &
pid=$!
while [ "$(lines "$work/out.txt")" -lt 500 ]; do sleep 0.01; done
incr checkpoint "$pid"

echo "== 3. it runs on to iteration ~1000, then the node 'fails' (SIGKILL)"
while [ "$(lines "$work/out.txt")" -lt 1000 ]; do sleep 0.01; done
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
echo "   killed PID $pid after $(lines "$work/out.txt") lines"
incr list

echo "== 4. restore: same PID, continues from the checkpoint, runs to the end"
incr restore --latest
echo "   finished with $(lines "$work/out.txt") lines"

if cmp -s "$work/reference.txt" "$work/out.txt"; then
    echo "== output identical to the uninterrupted run: OK"
else
    echo "== output DIFFERS from the uninterrupted run" >&2
    exit 1
fi
