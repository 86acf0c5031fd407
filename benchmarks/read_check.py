"""What the read path's frame check costs: every page of a checkpoint read from a store with
the check on and off, interleaved run by run, medians (the check: each page comes from the
frame its pack's trailer lists it in, so that a wrong index never yields another page).

    python benchmarks/read_check.py STORE [--repeat 5] [--id ID]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from incr.pagestore import Store
from incr.pagestore.layers import read_region, region_layers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("store", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--id", help="checkpoint (default: the newest)")
    args = ap.parse_args()
    with Store.open(args.store) as store:
        sid, snapshot = store.load(args.id) if args.id else store.snapshots()[-1]
        digests = b"".join(d for ref in snapshot.page_maps
                           for d in read_region(region_layers(ref), store.read_blob).values())
        pages = len(digests) // 16
        out = bytearray(pages * 4096)
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.repeat):
            for check in (True, False):
                store.check_frames = check
                store._forget_read_caches()
                t0 = time.perf_counter()
                store.read_pages_into(digests, out)
                times[check].append(time.perf_counter() - t0)
    on, off = statistics.median(times[True]), statistics.median(times[False])
    print(f"checkpoint {sid[:12]}: {pages} pages ({pages * 4096 / 1e6:.0f} MB); read with the frame check "
          f"{on * 1e3:.0f} ms, without {off * 1e3:.0f} ms (median of {args.repeat}): ratio {on / off:.3f}")


if __name__ == "__main__":
    main()
