"""Every setting a function reads, parsed before its first record: a bad one is one clear
error at start-up (the invocation fails, Lambda's Errors alarm says why, the batch is
retried whole), never a failure of each frame that happens to need it.

Each handler calls :func:`check` first. Parsing is cached per distinct environment (a
Lambda container's is fixed), so a container pays for it once, on its first invocation,
and a transient failure there (reading the time-zone database) fails that invocation only.
``sls deploy`` refuses the same mistakes earlier (vidsift/deploy_checks.py); this is for
a setting changed in the console, or a local run's environment.

One day all settings become one object; until then this names which parsers a stage uses.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from vidsift import contract
from vidsift.config import ConfigError, Settings
from vidsift.stages import alerting


def _split() -> Any:
    from vidsift.stages.splitting import SplitConfig
    return SplitConfig.from_env()


def _tracking() -> Any:
    from vidsift.core.face_frames import FaceRule
    from vidsift.stages.tracking import track_params
    return FaceRule.from_env(), track_params()


def _faces() -> Any:
    from vidsift.core.matching import MatchSettings
    from vidsift.stages import rate
    return MatchSettings.from_env(), rate.rekognition_tps()


#: What each stage parses besides the shared Settings (imported lazily: a stage's layer
#: holds only its own dependencies).
PARSERS: dict[str, tuple[Callable[[], Any], ...]] = {
    "split_frames": (_split,),
    "detect_people": (alerting.alert_settings,),
    "track_people": (_tracking,),
    "analyze_faces": (alerting.alert_settings, _faces),
    "alert_faces": (alerting.alert_settings, _faces),
}


@lru_cache(maxsize=16)
def _checked(stage: str, values: tuple[str | None, ...]) -> None:
    del values  # the cache key only: the parsers read the same variables
    try:
        Settings.from_env()
        for parse in PARSERS.get(stage, (alerting.alert_settings, _faces)):
            parse()
    except ConfigError as exc:
        raise ConfigError(f"{stage}: a function setting is invalid, no record was processed: {exc}") from exc


def check(stage: str) -> None:
    """Parse every setting ``stage`` uses; ConfigError naming the setting if one is bad."""
    _checked(stage, tuple(os.environ.get(name) for name in sorted(contract.load()["env"])))
