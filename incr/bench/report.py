"""`incr bench --report DIR`: report.md and its plots (matplotlib, drawn off-screen).

The plots: downtime per checkpoint over the run (incr's own account, the job's probe, the
peers'; log scale), bytes per checkpoint (incremental, full, peers), restore time against the
job's resident size (with the copy limit), and the ratios (incr against its baselines and
against each peer)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from incr.bench.harness import Trial
from incr.errors import UsageError
from incr.units import size


def measured(peer_entry: dict[str, Any]) -> bool:
    """Whether a peer's entry has figures (not only the failures of its every run)."""
    return "restore_s" in peer_entry


def write_report(result: dict[str, Any], trials: Sequence[Trial], out: Path) -> list[Path]:
    """report.md and the PNGs into `out`; returns the files written."""
    try:
        import matplotlib
    except ImportError:
        raise UsageError("--report draws with matplotlib, which is not installed: "
                         "pip install 'incr[bench]' (or matplotlib)") from None
    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    plots = [_downtime(trials, out / "downtime.png"), _bytes(result, out / "bytes.png"),
             _restore(result, out / "restore.png"), _ratios(result, out / "ratios.png")]
    report = out / "report.md"
    report.write_text(_markdown(result, [p.name for p in plots]))
    return [report, *plots]


def _engines(trials: Sequence[Trial]) -> list[str]:
    seen: list[str] = []
    for t in trials:
        if t.engine not in seen:
            seen.append(t.engine)
    return seen


#: Where a downtime too short to see is drawn (the probe reports only stalls over 2 ms).
FLOOR_MS = 1.0


def _downtime(trials: Sequence[Trial], path: Path) -> Path:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    workloads = list(dict.fromkeys(t.workload for t in trials))
    cols = min(4, len(workloads))
    rows = (len(workloads) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    engines = _engines(trials)
    for ax, name in zip(axes.flat, workloads, strict=False):
        for k, engine in enumerate(engines):
            first = next((t for t in trials if t.workload == name and t.engine == engine and not t.failed), None)
            if first is None:
                continue                 # (its colours stay its own: an engine keeps them in every panel)
            own_colour, probe_colour = f"C{2 * k}", f"C{2 * k + 1}"
            series = [c for c in first.checkpoints if c.mode in ("first", "incremental", "dump")]
            xs = list(range(1, len(series) + 1))
            if engine == "incr":
                ax.plot(xs, [max(c.downtime_ms, FLOOR_MS) for c in series], "o-", color=own_colour,
                        label="incr (its own)")
                ax.plot(xs, [max(c.probe_ms, FLOOR_MS) for c in series], "x--", color=probe_colour,
                        label="incr (job's probe)")
            else:
                own = [c.downtime_ms for c in series]
                if all(v >= 0 for v in own):
                    ax.plot(xs, [max(v, FLOOR_MS) for v in own], "s-", color=own_colour, label=f"{engine} (its own)")
                ax.plot(xs, [max(c.probe_ms, FLOOR_MS) for c in series], "+:", color=probe_colour,
                        label=f"{engine} (job's probe)")
        _log_axis(ax, "y")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name)
        ax.set_xlabel("checkpoint #")
        ax.set_ylabel("downtime (ms)")
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(workloads):]:
        ax.axis("off")
    # One legend of every series drawn in any panel: the first panel may lack an engine that failed there.
    legend: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    axes.flat[0].legend(list(legend.values()), list(legend), fontsize="small")
    fig.suptitle(f"Downtime per checkpoint (first run of each workload; log scale; the probe sees stalls over "
                 f"2 ms, shorter ones are drawn at {FLOOR_MS:g} ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def bytes_bars(result: dict[str, Any]) -> dict[str, list[float | None]]:
    """MiB per checkpoint by series (incr incremental, incr full, each peer), one per workload in
    order; None where a peer has no figure (every run of it failed): no bar is drawn there."""
    bars: dict[str, list[float | None]] = {"incr incremental": [], "incr full": []}
    peers = sorted({p for w in result["workloads"].values() for p in w["peers"]})
    for p in peers:
        bars[p] = []
    for w in result["workloads"].values():
        bars["incr incremental"].append(w["bytes_per_checkpoint"]["incremental"] / 2**20)
        bars["incr full"].append(w["bytes_per_checkpoint"]["full"] / 2**20)
        for p in peers:
            pw = w["peers"].get(p, {})
            bars[p].append(pw["bytes_per_checkpoint"] / 2**20 if measured(pw) else None)
    return bars


def _bytes(result: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt
    names = list(result["workloads"])
    bars = bytes_bars(result)
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(names)), 4))
    width = 0.8 / len(bars)
    floor = 1e-3
    for k, (label, values) in enumerate(bars.items()):
        xs = [i + k * width for i in range(len(names))]
        ax.bar([x for x, v in zip(xs, values, strict=True) if v is not None],
               [max(v, floor) for v in values if v is not None], width, label=label)
        for x, v in zip(xs, values, strict=True):
            if v is None:
                ax.text(x, 0.02, "failed", rotation=90, ha="center", va="bottom", fontsize="x-small",
                        transform=ax.get_xaxis_transform())
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(names))], names, rotation=20)
    _log_axis(ax, "y")
    ax.set_ylabel("MiB stored per checkpoint (log scale)")
    ax.set_title("Bytes per checkpoint: incremental, full, peers (medians)")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _restore(result: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    points: dict[str, list[tuple[float, float, str]]] = {"incr": [], "copy limit": []}
    for name, w in result["workloads"].items():
        mib = w["resident_mb"]
        points["incr"].append((mib, w["restore_s"], name))
        points["copy limit"].append((mib, w["copy_limit_s"], name))
        for p, pw in w["peers"].items():
            if measured(pw):
                points.setdefault(p, []).append((mib, pw["restore_s"], name))
    markers = iter("osD^v<>")
    for label, pts in points.items():
        ax.scatter([x for x, _, _ in pts], [y for _, y, _ in pts], label=label,
                   marker="_" if label == "copy limit" else next(markers), s=80)
    for x, y, name in points["incr"]:
        ax.annotate(name, (x, y), fontsize="x-small", xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("job's resident memory (MiB, non-zero pages)")
    ax.set_ylabel("restore until the job runs again (s)")
    ax.set_title("Restore time against size")
    _log_axis(ax, "x")
    _log_axis(ax, "y")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


RATIO_NAMES = {"downtime_ms_p50": "downtime", "probe_ms_p50": "downtime (probe)", "bytes_per_checkpoint": "bytes",
               "checkpoint_wall_s": "checkpoint wall", "restore_s": "restore"}


def ratio_rows(result: dict[str, Any]) -> list[tuple[str, str, float, bool]]:
    """(workload, what, ratio, whether above 1 is good for incr) of every ratio the run has:
    incr against its baselines and against each peer."""
    rows: list[tuple[str, str, float, bool]] = []
    for name, w in result["workloads"].items():
        rows.append((name, "ingest / zstd -1", w["ingest_vs_zstd"], True))
        rows.append((name, "restore / copy limit", w["restore_vs_copy_limit"], False))
        rows.append((name, "restore late / early", w["restore_late_vs_early"], False))
        rows.append((name, "tracked slowdown", w["tracking_slowdown"], False))
        for p, pw in w["peers"].items():
            for what, r in pw.get("incr_over_peer", {}).items():
                rows.append((name, f"incr/{p} {RATIO_NAMES.get(what, what)}", r, False))
    return rows


def _ratios(result: dict[str, Any], path: Path) -> Path:
    """A grid: one row per ratio, one column per workload, each cell the ratio, coloured by how
    far incr is on the good side of 1 (green) or the bad side (red), on a log scale."""
    import math

    import matplotlib.pyplot as plt
    rows = ratio_rows(result)
    workloads = list(dict.fromkeys(name for name, _, _, _ in rows))
    kinds = list(dict.fromkeys(what for _, what, _, _ in rows))
    cell = {(name, what): (r, up) for name, what, r, up in rows}
    grid: list[list[float]] = []
    for what in kinds:
        line = []
        for name in workloads:
            r, up = cell.get((name, what), (0.0, False))
            # log10 of incr's disadvantage: below 0 incr is ahead (green), above behind (red).
            line.append(math.log10(1 / r if up else r) if r > 0 else math.nan)
        grid.append(line)
    fig, ax = plt.subplots(figsize=(1.2 * len(workloads) + 3.5, 0.38 * len(kinds) + 1.6))
    image = ax.imshow(grid, cmap="RdYlGn_r", vmin=-2, vmax=2, aspect="auto")
    for i, what in enumerate(kinds):
        for j, name in enumerate(workloads):
            r, _ = cell.get((name, what), (0.0, False))
            ax.text(j, i, f"{r:.2g}" if r > 0 else "-", ha="center", va="center", fontsize="x-small")
    ax.set_xticks(range(len(workloads)), workloads, rotation=20)
    ax.set_yticks(range(len(kinds)), kinds, fontsize="small")
    bar = fig.colorbar(image, ax=ax, shrink=0.8)
    bar.set_label("log10 of incr's disadvantage (green: incr ahead)")
    ax.set_title("Ratios (medians of ratios taken within each run; incr/peer below 1: incr ahead)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _markdown(result: dict[str, Any], plots: list[str]) -> str:
    m, s = result["machine"], result["settings"]
    lines = [
        "# incr bench", "",
        f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, kernel {m['kernel']}; incr {m['incr_version']} "
        f"({m['commit']}), Python {m['python']}.",
        f"Load average at the start {fmt_load(m['load_avg'])}, at the end {fmt_load(result['load_avg_end'])}; "
        f"tracker {', '.join(sorted({t for w in result['workloads'].values() for t in w['tracker']})) or '-'}.",
        f"Settings: sizes {', '.join(f'{x} MiB' for x in s['sizes_mib'])}, {s['repeat']} runs per engine, "
        f"{s['checkpoints']} checkpoints a series {s['interval_s']} s apart, seed {s['seed']}; took "
        f"{result['elapsed_s']:.0f} s.  Peers: {peers_line(result)}.", "",
        "Medians over the runs (min-max in the JSON).  Downtime: incr's own account / the job's 1 ms probe; "
        "probe alone: the longest stall the probe saw with nothing done to the job (the machine's noise, "
        "which the probe's figures include).", "",
        "| workload | resident | downtime incr. (probe) | no pre-copy | full (probe) | probe alone | bytes incr. "
        "| bytes full "
        "| ckpt wall incr. / full | ingest / zstd -1 | restore (copy limit) | late / early | tracked slowdown "
        "| incr peak RSS (anon + file) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, w in result["workloads"].items():
        d = w["downtime_ms_p50"]
        lines.append(
            f"| {name} | {w['resident_mb']:.0f} MiB | {d['incremental']:.1f} ms ({d['probe']:.1f}) "
            f"| {d['no_precopy']:.1f} ms | {d['full']:.1f} ms ({d['probe_full']:.1f}) "
            f"| {_ms(w.get('probe_quiet_ms'))} | {size(w['bytes_per_checkpoint']['incremental'])} "
            f"| {size(w['bytes_per_checkpoint']['full'])} "
            f"| {w['checkpoint_wall_s']['incremental']:.2f} / {w['checkpoint_wall_s']['full']:.2f} s "
            f"| {w['ingest_mb_s']:.0f} / {w['zstd_mb_s']:.0f} MB/s | {w['restore_s']:.2f} s "
            f"({w['copy_limit_s']:.2f}) | {w['restore_late_vs_early']:.2f} | {w['tracking_slowdown']:.3f} "
            f"| {w['incr_peak_rss_mb']:.0f} MiB ({w['incr_peak_anon_mb']:.0f} + {w['incr_peak_file_mb']:.0f}) |")
    peer_rows = [(name, p, pw) for name, w in result["workloads"].items() for p, pw in w["peers"].items()
                 if measured(pw)]
    if peer_rows:
        lines += ["", "## Side by side", "",
                  "Per peer its medians, then incr's figure over the peer's, run by run (below 1: incr is ahead).",
                  "", "| workload | peer | downtime (probe) | bytes per checkpoint | checkpoint wall | restore "
                  "| incr/peer downtime | probe | bytes | wall | restore |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, p, pw in peer_rows:
            r = pw["incr_over_peer"]
            lines.append(
                f"| {name} | {p} | {pw['downtime_ms_p50']:.1f} ms ({pw['probe_ms_p50']:.1f}) "
                f"| {size(pw['bytes_per_checkpoint'])} | {pw['checkpoint_wall_s']:.2f} s | {pw['restore_s']:.2f} s "
                f"| {r['downtime_ms_p50']:.3f} | {r['probe_ms_p50']:.3f} | {r['bytes_per_checkpoint']:.3f} "
                f"| {r['checkpoint_wall_s']:.3f} | {r['restore_s']:.3f} |")
    failures = [(name, "incr", why) for name, w in result["workloads"].items() for why in w["failed"]]
    failures += [(name, p, why) for name, w in result["workloads"].items() for p, pw in w["peers"].items()
                 for why in pw["failed"]]
    if failures:
        lines += ["", "## Runs that failed", "", "Their figures are left out of the medians.", ""]
        lines += [f"* {name}, {engine}: {why}" for name, engine, why in failures]
    lines += [""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    """A figure in ms, or a dash where the JSON has none (written by an older incr)."""
    return "-" if value is None else f"{value:.1f} ms"


def _log_axis(ax: Any, which: str) -> None:
    """A log scale on axis `which` ("x" or "y"), labelled in plain numbers (0.5, 20, 300)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=30))   # labels within a decade too
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def fmt_load(load: list[float]) -> str:
    return " / ".join(f"{x:.2f}" for x in load)


def peers_line(result: dict[str, Any]) -> str:
    parts = [f"{p['name']} {p['version']}" for p in result["peers"]["present"]]
    parts += [f"{name} absent ({why})" for name, why in result["peers"]["absent"].items()]
    return "; ".join(parts) or "none asked for (--compare criu,dmtcp)"
