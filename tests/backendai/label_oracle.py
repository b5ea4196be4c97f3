"""Backend.AI's own verdicts, from the ai.backend.common of a sandbox's virtualenv (23.09 or 26.x).

Run by that virtualenv's Python (26.x's inside its service container), so it imports nothing of the
project. One JSON request a line on stdin ({"kind": ..., "value": ...}), one JSON answer a line on
stdout ({"ok": bool, "error": str}).
"""

import json
import sys

from ai.backend.common.docker import ImageRef, validate_image_labels
from ai.backend.common.service_ports import parse_service_ports
from ai.backend.common.types import BinarySize


def image_ref(value):
    """The registry is the part before the first '/', as the manager takes it from its own rows."""
    if hasattr(ImageRef, "parse_image_str"):  # 24.03+: a dataclass built from the parsed parts
        parsed = ImageRef.parse_image_str(value, "*")
        ImageRef.from_image_str(value, None, parsed.registry)
    else:
        ImageRef(value, ["*"])


CHECKS = {
    "service_ports": lambda value: parse_service_ports(value, ""),
    "binary_size": BinarySize.from_str,
    "labels": validate_image_labels,
    "image_ref": image_ref,
}

for line in sys.stdin:
    request = json.loads(line)
    try:
        CHECKS[request["kind"]](request["value"])
        answer = {"ok": True, "error": ""}
    except Exception as error:  # whatever Backend.AI raises is its refusal
        answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    print(json.dumps(answer), flush=True)
