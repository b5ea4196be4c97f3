"""A stand-in `nvidia-smi` on PATH that answers `--query-gpu` as the real one does on recorded nodes.

Recorded facts (nvidia-smi of an 8-GPU H100 SXM node and an 8-GPU H200 node, as public logs show them):
`name` is "NVIDIA H100 80GB HBM3" and "NVIDIA H200"; `memory.total` is 81559 MiB and 143771 MiB. The CSV
format is nvidia-smi's: one line per GPU, fields joined by ", ", a header line (`name, memory.total [MiB]`)
unless `noheader`, and the unit after each number (`81559 MiB`) unless `nounits`. A node without a
working driver answers as nvidia-smi does there (exit 9, the message on stdout).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NODES = {
    "8xH100": [{"name": "NVIDIA H100 80GB HBM3", "memory.total": 81559}] * 8,
    "8xH200": [{"name": "NVIDIA H200", "memory.total": 143771}] * 8,
    "no-driver": None,
}
UNITS = {"memory.total": "MiB"}
NO_DRIVER = ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the "
             "latest NVIDIA driver is installed and running.\n")


def answer(gpus: list[dict] | None, argv: list[str]) -> tuple[int, str]:
    """What nvidia-smi prints for `argv` on a node with `gpus` (None: no working driver)."""
    if gpus is None:
        return 9, NO_DRIVER
    options = dict(arg.split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg)
    fields = options["--query-gpu"].split(",")
    formats = options.get("--format", "").split(",")
    if "csv" not in formats:
        return 2, "only the CSV format is recorded\n"
    units = "nounits" not in formats
    lines = [] if "noheader" in formats else [", ".join(
        f"{field} [{UNITS[field]}]" if field in UNITS else field for field in fields)]
    for gpu in gpus:
        lines.append(", ".join(f"{gpu[field]} {UNITS[field]}" if units and field in UNITS else str(gpu[field])
                               for field in fields))
    return 0, "".join(line + "\n" for line in lines)


def install(bin_dir: Path, node: str) -> Path:
    """Write the stand-in for `node` (a key of NODES) into `bin_dir`; put bin_dir first on PATH to use it."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "nvidia-smi"
    script.write_text(f"#!{sys.executable}\nimport json, sys\nsys.path.insert(0, {str(REPO_ROOT)!r})\n"
                      "from tests.nvidia_smi import answer\n"
                      f"code, text = answer(json.loads({json.dumps(NODES[node])!r}), sys.argv[1:])\n"
                      "sys.stdout.write(text)\nsys.exit(code)\n")
    script.chmod(0o755)
    return script
