"""Which published result a score is measured against: the same benchmark on the same accelerators.

The question is "how far from the published result on the same GPUs", so a score is set beside the
published results of its benchmark with the same accelerator model and count (the fastest of them,
which names the round); when none has both, the nearest is taken and the match says so: the same model
at the nearest count, else the nearest count of any model. Models are compared by family and form
factor, as nvidia-smi and the submitters' system descriptions spell them differently ("NVIDIA H100 80GB
HBM3" is an "NVIDIA H100-SXM5-80GB"; a PCIe card is another form).

API:
- `Accelerators(model, count)`; `from_description(described) -> Accelerators | None` (systems/<system>.json)
- `model_key(name) -> (family, form)`
- `best_match(benchmark, accelerators, published) -> Match | None`
- `Match`: peer, same (model and count), why (words); `percent(minutes)`: the published time over ours
  in percent (100: as fast; 50: it takes twice as long); `words(minutes)`: a sentence for summaries
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from common.results.published import Published

# Longer names first: GH200 is not an H200, GB200 not a B200.
_FAMILY = re.compile(r"(GB300|GB200|GH200|B300|B200|H200|H100|H800|H20|A100|A800|A40|A30|A10G?|L40S|L40|L4|V100|T4|"
                     r"MI\d{3}X?|GAUDI\s?\d|TPU[-\s]?V\d\w*)")


@dataclass(frozen=True)
class Accelerators:
    model: str
    count: int

    def __str__(self) -> str:
        return f"{self.count}x {self.model}"


def model_key(name: str) -> tuple[str, str]:
    upper = name.upper()
    found = _FAMILY.search(upper)
    family = found.group(1).replace(" ", "") if found else upper.strip()
    if "PCIE" in upper:
        form = "PCIe"
    elif "NVL" in upper:
        form = "NVL"
    elif upper.startswith("NVIDIA") or "SXM" in upper or "HBM" in upper:
        form = "SXM"
    else:
        form = ""
    return family, form


def from_description(described: dict[str, Any] | None) -> Accelerators | None:
    """The accelerators of a system description, or None without a model and a count."""
    if not described:
        return None
    model = str(described.get("accelerator_model_name") or "").strip()
    try:
        count = int(str(described.get("number_of_nodes") or "1")) * int(str(described.get("accelerators_per_node")))
    except ValueError:
        return None
    if not model or count <= 0 or model.startswith("TO FILL IN"):
        return None
    return Accelerators(model, count)


@dataclass(frozen=True)
class Match:
    peer: Published
    same: bool
    why: str

    def percent(self, minutes: float) -> float:
        return 100.0 * self.peer.minutes / minutes

    def words(self, minutes: float | None, what: str = "this score") -> str:
        head = (f"published {self.peer.minutes:.2f} min: {self.peer.submitter} {self.peer.system}, "
                f"{self.peer.accelerators}, {self.peer.round} ({self.why})")
        if minutes is None:
            return head
        return f"{head}; {what} is {self.percent(minutes):.1f}% of its speed"


def _distance(peer: Published, count: int) -> float:
    return abs(math.log((peer.accelerator_count or 1) / count))


def best_match(benchmark: str, accelerators: Accelerators | None,
               published: Sequence[Published]) -> Match | None:
    peers = [p for p in published if p.benchmark == benchmark and p.accelerator_count and p.accelerator_model]
    if accelerators is None or not peers:
        return None
    key = model_key(accelerators.model)
    same_model = [p for p in peers if model_key(p.accelerator_model) == key]  # type: ignore[arg-type]
    same = [p for p in same_model if p.accelerator_count == accelerators.count]
    if same:
        return Match(min(same, key=lambda p: p.minutes), True,
                     f"the fastest published {benchmark} result on {accelerators.count}x {' '.join(key).strip()}")
    if same_model:
        nearest = min(same_model, key=lambda p: (_distance(p, accelerators.count), p.minutes))
        return Match(nearest, False, f"nearest: no published {benchmark} result on {accelerators.count}x "
                                     f"{' '.join(key).strip()}; the same model at {nearest.accelerator_count}")
    nearest = min(peers, key=lambda p: (_distance(p, accelerators.count), p.minutes))
    return Match(nearest, False, f"nearest: no published {benchmark} result on {' '.join(key).strip()}; "
                                 f"the nearest count of another model")
