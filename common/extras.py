"""The optional dependencies (pyproject extras) a command needs, checked before it starts.

Without this, a missing extra ends in a traceback from deep inside (`No module named 'PIL'`); with it,
the user reads one line naming the extra and the pip command. Checking looks modules up without
importing them, so the control plane stays light.
"""

from __future__ import annotations

import importlib.util

# Import names of each extra's requirements in pyproject.toml (a test keeps the two in step).
MODULES = {
    "train": ("torch", "torchvision", "pycocotools", "faster_coco_eval", "mlperf_logging", "sacrebleu", "sacremoses",
              "subword_nmt", "regex", "numpy", "PIL"),
    "bai": ("psutil", "filelock"),
    "results": ("mlperf_logging", "matplotlib"),
}


class MissingExtraError(RuntimeError):
    """A command needs an extra that is not installed."""

    def __init__(self, purpose: str, extra: str, module: str) -> None:
        super().__init__(f"{purpose} needs the '{extra}' extra (module {module!r} is not installed): "
                         f"pip install -e '.[{extra}]'")
        self.extra = extra
        self.module = module


def _missing(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is None
    except ModuleNotFoundError:  # a parent package of a dotted name is missing
        return True


def require(extra: str, purpose: str, modules: tuple[str, ...] | None = None) -> None:
    """Raise MissingExtraError naming `extra` unless its modules (or those of them named) can be imported."""
    for module in modules or MODULES[extra]:
        if module not in MODULES[extra]:
            raise ValueError(f"{module!r} is not provided by the {extra!r} extra (common/extras.py)")
        if _missing(module):
            raise MissingExtraError(purpose, extra, module)
