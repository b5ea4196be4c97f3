"""Download throughput against curl from the same local HTTP server, in the same run.

A separate process serves one file over HTTP on 127.0.0.1 (Python's http.server); curl and the
project's downloader each fetch it to disk. The downloader is timed twice: with the md5 it checks
on every real download (hashed inline as bytes arrive) and without a checksum (the transfer
alone); curl is timed alone and piped through md5sum (the same work as the checked download).
Expect >= 0.8x curl. Prints the figures; asserts nothing.

    python perf/download.py [--size-mb 1024] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.datasets.checksums import Checksum  # noqa: E402
from common.datasets.download import Downloader, Remote  # noqa: E402
from perf.timing import best_of  # noqa: E402
from tests.harness.system import free_port, port_open, wait_until  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        served, out = root / "served", root / "out"
        served.mkdir()
        out.mkdir()
        h = hashlib.md5()
        block = os.urandom(1 << 20)
        with (served / "data.bin").open("wb") as f:
            for _ in range(args.size_mb):
                f.write(block)
                h.update(block)
        size = args.size_mb << 20
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                   "--directory", str(served)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: port_open("127.0.0.1", port), 10, f"the HTTP server on port {port}")
            url = f"http://127.0.0.1:{port}/data.bin"
            dest = out / "data.bin"

            def curl() -> None:
                subprocess.run(["curl", "-sSf", "-o", str(dest), url], check=True)
                dest.unlink()

            def curl_md5() -> None:
                subprocess.run(f"curl -sSf {url} | tee {dest} | md5sum", shell=True, check=True,
                               stdout=subprocess.DEVNULL)
                dest.unlink()

            def ours(checksum: Checksum | None) -> None:
                Downloader(show_progress=False, workers=1).fetch_all([Remote(url, dest, size, checksum)])
                dest.unlink()

            curl()  # warm the server's page cache
            t_curl = best_of(curl, args.repeat)
            t_curl_md5 = best_of(curl_md5, args.repeat)
            t_md5 = best_of(lambda: ours(Checksum("md5", h.hexdigest())), args.repeat)
            t_plain = best_of(lambda: ours(None), args.repeat)
        finally:
            server.terminate()
            server.wait()
    mb = size / 1e6
    print(f"cores: {os.cpu_count()}, file {mb:.0f} MB from http.server on 127.0.0.1, best of {args.repeat}")
    print(f"curl                 {mb / t_curl:7.0f} MB/s")
    print(f"curl | tee | md5sum  {mb / t_curl_md5:7.0f} MB/s")
    print(f"downloader + md5     {mb / t_md5:7.0f} MB/s  ratio {t_curl / t_md5:.2f}x to curl, "
          f"{t_curl_md5 / t_md5:.2f}x to curl | tee | md5sum")
    print(f"downloader, no hash  {mb / t_plain:7.0f} MB/s  ratio {t_curl / t_plain:.2f}x")


if __name__ == "__main__":
    main()
