"""When to start, split and stop a clip: a small state machine over frame times, nothing else.

Kept free of video, models and clocks so its rule can be tested frame by frame. One
*presence* (people in view without a break longer than ``post_roll_s``) is recorded whole,
in as many parts as ``max_clip_s`` needs:

* start when a person is detected and recording is allowed; the clip begins ``pre_roll_s``
  before the detection, with the frames the recorder kept in its pre-roll buffer;
* split when the part reached ``max_clip_s`` (pre-roll included) while the presence goes on:
  the part ends before this frame and the next part begins with it, so no frame is lost or
  doubled between parts. ``max_clip_s`` bounds one file, not what is covered;
* stop once ``post_roll_s`` have passed without a person (the presence is over), or when a
  part ends outside the ``hours`` window. The frame that triggers the stop is not in it.

``min_gap_s`` only rate-limits new presences (a flapping detector): a presence may start
only ``min_gap_s`` after the previous presence started (first frame to first frame). Parts of
a presence are not new presences: the gap never cuts one short.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time


@dataclass(frozen=True)
class ClipSettings:
    """The clip rule's lengths (seconds): pre-roll before the first person, post-roll after the last,
    the longest part before a split, and the gap that still counts as the same presence."""

    pre_roll_s: float = 3.0
    post_roll_s: float = 5.0
    max_clip_s: float = 20.0
    min_gap_s: float = 10.0


#: Frame times are floats (pts x time_base); compare "at least N seconds" with this slack.
EPS = 1e-6

START = "start"
SPLIT = "split"
STOP = "stop"


class ClipRule:
    """Decides from frame times and detections alone when a clip starts, splits and stops: no
    video, no I/O, so the rule is tested on timelines and the recorder only follows it."""

    def __init__(self, settings: ClipSettings) -> None:
        self.s = settings
        self.recording = False
        self.first_t: float | None = None  # first frame of the current part
        self.last_person_t: float | None = None
        self.presence_t: float | None = None  # first frame of the current or last presence
        self.part = 0  # the current part's number within its presence, from 1
        self.presences = 0  # presences started so far: the recorder names each one's group
        self.stop_reason = ""

    def step(self, t: float, person: bool | None, allowed: bool = True, oldest_buffered_t: float | None = None) -> \
            str | None:
        """Feed one frame. ``person`` is None when the detector did not run on this frame.
        Returns START (a presence's first part begins at ``self.first_t``, this frame
        included), SPLIT (the part ended before this frame; the next begins with it), STOP
        (the clip ended before this frame) or None."""
        if not self.recording:
            if not person or not allowed:
                return None
            first = t - self.s.pre_roll_s
            if oldest_buffered_t is not None:
                first = max(first, oldest_buffered_t)
            if self.presence_t is not None and first - self.presence_t < self.s.min_gap_s - EPS:
                return None
            self.recording, self.first_t, self.last_person_t, self.presence_t = True, first, t, first
            self.part, self.presences = 1, self.presences + 1
            return START
        if person:
            self.last_person_t = t
        assert self.first_t is not None and self.last_person_t is not None
        if t - self.last_person_t >= self.s.post_roll_s - EPS:
            self.stop_reason = f"no person for {self.s.post_roll_s:g} s"
        elif t - self.first_t >= self.s.max_clip_s - EPS:
            if allowed:
                self.stop_reason = f"maximum length {self.s.max_clip_s:g} s, continues in part {self.part + 1}"
                self.first_t, self.part = t, self.part + 1
                return SPLIT
            self.stop_reason = f"maximum length {self.s.max_clip_s:g} s, outside the recording hours"
        else:
            return None
        self.recording = False
        return STOP


_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class HoursWindow:
    """A daily local-time window such as "07:00-19:00"; "22:00-06:00" wraps midnight, "00:00-24:00" is all day."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> HoursWindow:
        """An ``HH:MM-HH:MM`` recording window (wrapping past midnight allowed); a ConfigError names a bad one."""
        from edge.config import ConfigError

        m = _HOURS.match(text)
        if not m:
            raise ConfigError(f"hours: expected HH:MM-HH:MM, got {text!r}")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        try:
            return cls(time(h1 % 24, m1), time(h2 % 24, m2))
        except ValueError as exc:
            raise ConfigError(f"hours: {exc}") from exc

    def contains(self, when: datetime) -> bool:
        """``when`` is judged in its own time zone; pass local time."""
        t = when.timetz().replace(tzinfo=None)
        if self.start == self.end:  # "00:00-24:00": all day
            return True
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end
