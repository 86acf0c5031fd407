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
from incr.pagestore import store as store_module
from incr.pagestore.layers import read_region, region_layers


class CheckClock:
    """Time spent in the check itself (reading each pack's frame table, the C call a pack):
    its share of a read is what the on/off ratio, within this machine's noise, cannot show."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._table = store_module.frame_table
        self._place = store_module.Store._check_placement

    def __enter__(self) -> CheckClock:
        def table(*args: object) -> object:
            t0 = time.perf_counter()
            try:
                return self._table(*args)  # type: ignore[arg-type]
            finally:
                self.seconds += time.perf_counter() - t0

        def place(*args: object) -> None:
            t0 = time.perf_counter()
            try:
                self._place(*args)  # type: ignore[arg-type]
            finally:
                self.seconds += time.perf_counter() - t0

        store_module.frame_table = table  # type: ignore[assignment]
        store_module.Store._check_placement = staticmethod(place)  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        store_module.frame_table = self._table
        store_module.Store._check_placement = self._place  # type: ignore[method-assign]


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
        store.check_frames = True
        inside = []
        for _ in range(args.repeat):
            store._forget_read_caches()
            with CheckClock() as clock:
                store.read_pages_into(digests, out)
            inside.append(clock.seconds)
    on, off = statistics.median(times[True]), statistics.median(times[False])
    check = statistics.median(inside)
    print(f"checkpoint {sid[:12]}: {pages} pages ({pages * 4096 / 1e6:.0f} MB); read with the frame check "
          f"{on * 1e3:.0f} ms, without {off * 1e3:.0f} ms (median of {args.repeat}): ratio {on / off:.3f}; "
          f"the check itself {check * 1e3:.1f} ms, {check / off:.1%} of the read")


if __name__ == "__main__":
    main()
