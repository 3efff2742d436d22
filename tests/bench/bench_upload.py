"""Upload/download throughput of the 13-capture synthetic dataset to Azurite on loopback.

    .venv/bin/python tests/bench/bench_upload.py [--dataset DIR] [--write-doc]

Generates the full-resolution dataset with ``neurohsi demo-data`` (cached in
.cache/bench-upload-dataset), starts Azurite (in-memory) on 127.0.0.1 and times
BlobStorage.upload_dataset for a few block sizes and concurrencies, a re-upload
(everything already committed: only hashing and HEAD requests), and a verified download.
Prints a table; ``--write-doc`` also writes docs/benchmarks/cloud.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from remote.blob_storage import BlobStorage, MiB  # noqa: E402
from tests.support.azurite import AzuriteServer  # noqa: E402
from tests.support.procs import group_stats  # noqa: E402


def dataset(path: Path) -> Path:
    if not (path / "ID0056C01" / "raw.tif").is_file():
        subprocess.run([sys.executable, "-m", "app.cli.main", "demo-data", str(path), "--seed", "0"],
                       check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return path


def client_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def group_cpu(pgid: int) -> float:
    """CPU seconds used so far by the processes of group ``pgid`` (Azurite's node process)."""
    return sum(cpu for _pid, _state, cpu in group_stats(pgid))


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=ROOT / ".cache" / "bench-upload-dataset")
    parser.add_argument("--write-doc", action="store_true")
    args = parser.parse_args()
    folder = dataset(args.dataset)
    total = size_of(folder)
    n_files = sum(1 for p in folder.rglob("*") if p.is_file())

    rows = []
    with tempfile.TemporaryDirectory() as tmp, AzuriteServer(Path(tmp)) as server:
        def once(block_mib, concurrency, action):
            container = f"bench{uuid.uuid4().hex[:10]}"
            storage = BlobStorage(server.connection_string, container=container,
                                  block_size=block_mib * MiB, max_concurrency=concurrency)
            storage.check()
            if action != "upload":
                storage.upload_dataset(folder, "bench")
            c0, s0, t0 = client_cpu(), group_cpu(server.process.pid), time.perf_counter()
            if action in ("upload", "re-upload"):
                storage.upload_dataset(folder, "bench")
            else:  # download
                out = Path(tmp) / "down"
                storage.download_dataset("bench", out)
            seconds = time.perf_counter() - t0
            client, srv = client_cpu() - c0, group_cpu(server.process.pid) - s0
            if action == "download":
                shutil.rmtree(out)
            storage.delete_prefix("")  # Azurite keeps everything in memory
            return seconds, client, srv

        def run(label, block_mib, concurrency, action, repeats=3):
            # The machine is shared: report the median and the best of a few runs.
            results = sorted(once(block_mib, concurrency, action) for _ in range(repeats))
            median, best = results[len(results) // 2], results[0]
            row = (label, block_mib, concurrency, median[0], total / 1e6 / median[0], total / 1e6 / best[0],
                   median[1], total / 1e6 / median[1], median[2])
            rows.append(row)
            print(f"{label:<26} {block_mib:>2} MiB {concurrency:>2} thr {median[0]:5.2f} s {row[4]:6.1f} MB/s "
                  f"(best {row[5]:6.1f})  client {row[6]:4.2f} cpu-s ({row[7]:4.0f} MB/cpu-s)  azurite {row[8]:4.2f} cpu-s")

        print(f"dataset: {folder} ({n_files} files, {total / 1e6:.1f} MB)")
        run("upload (warm-up)", 4, 4, "upload", repeats=1)
        rows.clear()
        for block, conc in ((4, 1), (4, 2), (4, 4), (8, 4), (4, 8)):
            run("upload", block, conc, "upload")
        run("re-upload (all committed)", 4, 4, "re-upload")
        run("download (sha256 checked)", 4, 4, "download")

    if args.write_doc:
        write_doc(rows, n_files, total)
    return 0


def write_doc(rows, n_files, total) -> None:
    cpu = platform.processor() or platform.machine()
    lines = [
        "# Cloud storage benchmark",
        "",
        "`tests/bench/bench_upload.py --write-doc` (generated). The 13-capture synthetic dataset",
        f"(`neurohsi demo-data`, full resolution: {n_files} files, {total / 1e6:.1f} MB) uploaded with",
        "`BlobStorage.upload_dataset` to Azurite 3.37.0 (in-memory) on 127.0.0.1. Every upload hashes",
        "each file (sha256 + MD5), sends per-block MD5 (`validate_content`), commits and then verifies",
        "the committed block list; the download recomputes every file's sha256.",
        "",
        f"Machine: {os.cpu_count()} CPU cores ({cpu}), Python {platform.python_version()}.",
        f"1-minute load average when written: {os.getloadavg()[0]:.1f} (a shared machine: wall figures vary",
        "with load; the CPU columns do not).",
        "",
        "| run | block | threads | seconds (median of 3) | MB/s (median) | MB/s (best) | client CPU s |"
        " client MB per CPU s | Azurite CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, block, conc, seconds, rate, best, client, per_cpu, srv in rows:
        lines.append(f"| {label} | {block} MiB | {conc} | {seconds:.2f} | {rate:.0f} | {best:.0f} | {client:.2f} |"
                     f" {per_cpu:.0f} | {srv:.2f} |")
    lines += [
        "",
        "MB/s (wall) is dataset bytes / wall time (re-upload: bytes checked, not sent; it hashes",
        "every file and asks the service for each blob's properties). Client CPU is this process's",
        "user + system time; 'client MB per CPU s' is the rate the client alone sustains per core,",
        "the ceiling if the server were free. Azurite CPU is the emulator's node process.",
        "",
    ]
    path = ROOT / "docs" / "benchmarks" / "cloud.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
