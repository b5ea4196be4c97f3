"""What a benchmark run on a cluster is made of, importable without the client (the tasks name it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClusterBenchmark:
    """What the control plane needs to know of a benchmark to run it in its image."""

    name: str
    result_name: str
    ruleset: str
    run_module: str
    download_module: str
    verify_module: str


@dataclass(frozen=True)
class NodeResources:
    """What each container of the session asks for (a sub copies main1's request)."""

    cpu: int = 2
    mem: str = "8g"
    gpus: float = 0
    gpu_slot: str = "cuda.device"
    shmem: str | None = None

    def slots(self) -> dict[str, str | int | float]:
        slots: dict[str, str | int | float] = {"cpu": self.cpu, "mem": self.mem}
        if self.gpus:
            slots[self.gpu_slot] = int(self.gpus) if float(self.gpus).is_integer() else self.gpus
        return slots
