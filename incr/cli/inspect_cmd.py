"""incr inspect ID [--json]: a checkpoint's process tree, VMAs, files, pages (our `crit`)."""

from __future__ import annotations

import argparse
import base64
import signal
from typing import Any

from ptrace.syscall.linux.x86_64 import SYSCALL_NAMES

from incr import api
from incr.cli.output import print_json, size
from incr.engine.ptrace import REG_NAMES, Regs
from incr.pagestore import PAGE_SIZE
from incr.proto import image_pb2
from incr.snapshot import region_name
from incr.timespec import iso_utc, local_short

HELP = """\
Show what a checkpoint holds: its statistics, and for each process its
threads (registers, the syscall it was in), memory mappings with the pages
stored for each, open files, signal handlers, timers, limits and ids.
ID may be any unique prefix of a checkpoint id (see `incr list`).  --json
prints everything, registers decoded, binary fields in base64."""

VMA_KINDS = {v: k.lower() for k, v in image_pb2.Vma.Kind.items()}
FILE_KINDS = {v: k.lower() for k, v in image_pb2.OpenFile.Kind.items()}


def register(sub: Any) -> None:
    p = sub.add_parser("inspect", help="show what a checkpoint holds", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("id", metavar="ID", help="checkpoint id or unique prefix")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def prot_str(prot: int) -> str:
    return ("r" if prot & 1 else "-") + ("w" if prot & 2 else "-") + ("x" if prot & 4 else "-")


def in_syscall(regs: Regs) -> str:
    nr = regs.signed("orig_rax")
    return SYSCALL_NAMES.get(nr, str(nr)) if nr >= 0 else ""


def signal_name(signo: int) -> str:
    try:
        return signal.Signals(signo).name
    except ValueError:
        return f"SIGRT{signo - signal.SIGRTMIN}" if signo >= signal.SIGRTMIN else str(signo)


def process_dict(p: image_pb2.ProcessImage, pages: dict[str, int]) -> dict[str, Any]:
    threads = []
    for t in p.threads:
        regs = Regs(t.regs)
        threads.append({
            "tid": t.tid, "in_syscall": in_syscall(regs), "sigmask": f"{t.sigmask:#x}",
            "registers": {name: f"{getattr(regs, name):#x}" for name in REG_NAMES},
            "xstate_bytes": len(t.xstate), "rseq": f"{t.rseq.pointer:#x}" if t.HasField("rseq") else None,
            "robust_list": f"{t.robust_list:#x}", "clear_child_tid": f"{t.clear_child_tid:#x}",
            "pending_signals": [signal_name(int.from_bytes(i[:4], "little")) for i in t.pending],
        })
    files = {f.id: f for f in p.files}
    return {
        "pid": p.pid, "ppid": p.ppid, "pgid": p.pgid, "sid": p.sid, "comm": p.comm, "cmdline": list(p.cmdline),
        "stopped": p.stopped, "threads": threads,
        "vmas": [{"start": f"{v.start:#x}", "end": f"{v.end:#x}", "prot": prot_str(v.prot),
                  "kind": VMA_KINDS[v.kind], "name": v.name, "offset": v.pgoff,
                  "pages_stored": pages.get(region_name(p.pid, v), 0)} for v in p.vmas],
        "fds": [{"fd": d.fd, "kind": FILE_KINDS[files[d.file].kind],
                 "path": files[d.file].what or files[d.file].path, "flags": f"{files[d.file].flags:#o}",
                 "pos": files[d.file].pos, "cloexec": d.cloexec, "description": d.file} for d in p.fds],
        "sigactions": [{"signal": signal_name(a.signo), "handler": f"{a.handler:#x}", "flags": f"{a.flags:#x}",
                        "mask": f"{a.mask:#x}"} for a in p.sigactions],
        "shared_pending_signals": [signal_name(int.from_bytes(i[:4], "little")) for i in p.shared_pending],
        "itimers": [{"which": t.which, "interval_us": t.interval_us, "value_us": t.value_us} for t in p.itimers],
        "cwd": p.fs.cwd, "umask": f"{p.fs.umask:04o}",
        "creds": {"uids": list(p.creds.uids), "gids": list(p.creds.gids), "groups": list(p.creds.groups),
                  "no_new_privs": p.creds.no_new_privs},
        "rlimits": [{"resource": r.resource, "soft": r.soft, "hard": r.hard} for r in p.rlimits],
        "mm": {"brk": f"{p.mm.brk:#x}", "start_brk": f"{p.mm.start_brk:#x}", "exe": p.mm.exe,
               "auxv": base64.b64encode(p.mm.auxv).decode()},
    }


def run(args: argparse.Namespace) -> int:
    info = api.Store(args.store).get(args.id)
    tree = info.tree
    pages = {ref.region: ref.pages for ref in info.snapshot.page_maps}
    data: dict[str, Any] = {"checkpoint": info.summary(), "labels": dict(info.snapshot.labels), "kernel": tree.kernel,
            "arch": tree.arch, "processes": [process_dict(p, pages) for p in tree.processes]}
    if args.json:
        print_json(data)
        return 0
    s = info.stats
    print(f"checkpoint {info.id}\n  time      {local_short(info.epoch)} ({iso_utc(info.epoch)})\n"
          f"  kind      {info.kind}, parent {info.parent[:12] or '-'}\n"
          f"  pages     {s.pages_total} listed ({size(s.pages_total * PAGE_SIZE)}), {s.pages_dirty} copied, "
          f"{s.pages_zero} zero, {s.pages_new} new\n"
          f"  stored    {size(s.bytes_stored)} new bytes; frozen {s.downtime_ms:.1f} ms, total {s.total_ms:.1f} ms\n"
          f"  tracker   {s.tracker} ({info.snapshot.labels.get('tracker_reason', '')}), "
          f"{s.rounds} pre-copy rounds, {s.pages_dirty} pages changed")
    for p in data["processes"]:
        print(f"\nprocess {p['pid']} ({p['comm']}) ppid {p['ppid']} pgid {p['pgid']} sid {p['sid']}"
              f"{' stopped' if p['stopped'] else ''}\n  cmdline   {' '.join(p['cmdline'])}\n  cwd       {p['cwd']}")
        for t in p["threads"]:
            where = f"in {t['in_syscall']}()" if t["in_syscall"] else "in user code"
            print(f"  thread {t['tid']}: {where}, rip {t['registers']['rip']}, sigmask {t['sigmask']}")
        print("  memory:")
        for v in p["vmas"]:
            print(f"    {v['start']:>14}-{v['end']:<14} {v['prot']} {v['kind']:12} {v['pages_stored']:>8} pages  "
                  f"{v['name']}")
        print("  files:")
        for d in p["fds"]:
            print(f"    {d['fd']:>4} {d['kind']:13} {d['path']}  flags {d['flags']} pos {d['pos']}"
                  f"{' cloexec' if d['cloexec'] else ''}")
        if p["sigactions"]:
            print("  signal handlers: " + ", ".join(a["signal"] for a in p["sigactions"]))
    return 0
