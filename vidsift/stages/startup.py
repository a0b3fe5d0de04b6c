"""Every setting a function reads, parsed before its first record: a bad one is one clear
error at start-up (the invocation fails, Lambda's Errors alarm says why, the batch is
retried whole), never a failure of each frame that happens to need it.

Each handler calls :func:`check` first. The settings (vidsift.settings) are one object per
distinct environment (a Lambda container's is fixed), and each part is kept once parsed,
so a container pays for it once, on its first invocation, and a transient failure there
(reading the time-zone database) fails that invocation only. ``sls deploy`` refuses the
same mistakes earlier (vidsift/deploy/checks.py); this is for a setting changed in the
console, or a local run's environment.
"""

from __future__ import annotations

from vidsift.core.errors import ConfigError
from vidsift.settings import Settings

#: The typed parts (vidsift.settings.Settings.PARTS) each stage parses besides the shared
#: settings. A stage not named here parses the face stages' parts.
PARTS: dict[str, tuple[str, ...]] = {
    "split_frames": ("split",),
    "detect_people": ("alerts",),
    "track_people": ("faces", "track"),
    "analyze_faces": ("alerts", "match", "rate", "visitors"),
    "alert_faces": ("alerts", "match", "rate"),
}


def check(stage: str) -> Settings:
    """Parse every setting ``stage`` uses and return them (this process's settings, one
    object per cold start, for the handler to pass down); ConfigError naming the setting
    if one is bad, before any record."""
    current = Settings.from_env()
    try:
        current.check(*PARTS.get(stage, ("alerts", "match", "rate")))
        if stage == "split_frames":  # the sampling options, as split_frames puts them together
            from vidsift.stages.splitting import SplitConfig  # PyAV: split_frames' layer only

            SplitConfig.from_settings(current)
    except ConfigError as exc:
        raise ConfigError(f"{stage}: a function setting is invalid, no record was processed: {exc}") from exc
    return current
