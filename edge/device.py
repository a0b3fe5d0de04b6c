"""Which device is this? A stable id for the `device-id` metadata.

A Raspberry Pi has a burned-in serial number (in /proc/cpuinfo and the device tree); it
survives re-imaging the SD card, which a host name does not, so it is preferred when the
operator has not configured an id.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
DT_SERIAL = Path("/sys/firmware/devicetree/base/serial-number")


def hardware_serial(cpuinfo: Path = CPUINFO, dt_serial: Path = DT_SERIAL) -> str | None:
    """The board serial if the hardware exposes one (Raspberry Pi and other ARM boards)."""
    try:
        m = re.search(r"^Serial\s*:\s*([0-9a-fA-F]+)\s*$", cpuinfo.read_text(errors="replace"), re.MULTILINE)
        if m and m.group(1).strip("0"):
            return m.group(1).lower()
    except OSError:
        pass
    try:
        serial = dt_serial.read_bytes().rstrip(b"\x00").decode("ascii", "replace").strip()
        if serial and serial.strip("0"):
            return serial.lower()
    except OSError:
        pass
    return None


def resolve_device_id(configured: str, cpuinfo: Path = CPUINFO, dt_serial: Path = DT_SERIAL) -> str:
    """An explicit id wins; "auto" means the hardware serial, else the host name."""
    if configured and configured != "auto":
        return configured
    return hardware_serial(cpuinfo, dt_serial) or socket.gethostname()
