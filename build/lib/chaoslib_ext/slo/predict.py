"""When should an alert fire (and resolve) after a fault? Pure arithmetic, so drills can state a deadline and the
promtool tests can check Prometheus against it.

Model: the error ratio steps from 0 to ``e`` at time 0 and stays there. The ratio over a window W then grows as
``e * t / W`` and first exceeds the threshold ``θ`` at ``t = W * θ / e`` (never when ``e <= θ``: the comparison is
strict). With several windows (multiwindow alerts) the last one to cross decides. After the crossing:

- the SLI must have been scraped: up to one ``scrape_interval`` late (0 at best);
- a rule evaluation must see it: up to one ``evaluation_interval`` late (0 at best);
- the alert stays pending for ``for:``, then fires on that evaluation;
- Alertmanager holds a new group for ``group_wait`` before notifying.

So the lower bound is ``W θ / e + for + group_wait`` and the upper bound adds one scrape and one evaluation
interval. Resolution is symmetric: once the errors stop, the ratio over W decays as ``e (W - t) / W`` (when the
fault lasted long enough to fire) and falls to θ at ``t = W (1 - θ / e)``; the shortest window decides, and the
"resolved" notification waits for ``group_interval`` of the existing group.

Not modelled: rate()'s extrapolation at the window edges and a counter series that appears only with its first
error (both shift the crossing by under one scrape interval), and Alertmanager's batching when another alert of
the same group is already firing (then ``group_interval``, not ``group_wait``, applies).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from chaoslib_ext.slo.durations import Duration
from chaoslib_ext.slo.model import Profile


@dataclass(frozen=True)
class Bounds:
    """An interval of seconds after the fault (or after the recovery, for resolution)."""

    lower: float
    """Earliest possible time, in seconds."""
    upper: float
    """Latest time if the pipeline works; a deadline for drills."""


def crossing_seconds(window: Duration, threshold: float, error_ratio: float) -> float | None:
    """Seconds after a step from 0 to ``error_ratio`` until the ratio over ``window`` exceeds ``threshold``;
    None if it never does. Never more than the window: once the window is full of errors the ratio is ``e``."""
    if error_ratio <= threshold:
        return None
    return min(window.seconds * threshold / error_ratio, window.seconds)


def time_to_fire(windows: Sequence[Duration], threshold: float, for_: Duration, error_ratio: float,
                 profile: Profile) -> Bounds | None:
    """When an alert on the error ratio over ``windows`` (all must exceed ``threshold``) reaches Alertmanager's
    receiver after the error ratio steps to ``error_ratio``. None when it never fires."""
    crossings = [crossing_seconds(w, threshold, error_ratio) for w in windows]
    if not crossings or None in crossings:
        return None
    lower = max(crossings) + for_.seconds + profile.group_wait.seconds
    return Bounds(lower, lower + profile.scrape_interval.seconds + profile.evaluation_interval.seconds)


def time_to_resolve(windows: Sequence[Duration], threshold: float, error_ratio: float, profile: Profile) -> Bounds:
    """When the "resolved" notification arrives after an error ratio of ``error_ratio`` (that fired the alert)
    drops to 0. The first window to fall to the threshold ends the alert."""
    lower = min(w.seconds * (1 - threshold / error_ratio) for w in windows) + profile.group_interval.seconds
    return Bounds(lower, lower + profile.scrape_interval.seconds + profile.evaluation_interval.seconds)


def time_to_fire_on_change(for_: Duration, profile: Profile) -> Bounds:
    """For alerts on a value (a gauge, a count of restarts): from the change that meets the condition until
    the notification."""
    lower = for_.seconds + profile.group_wait.seconds
    return Bounds(lower, lower + profile.scrape_interval.seconds + profile.evaluation_interval.seconds)


def time_to_forget(window: Duration, profile: Profile) -> Bounds:
    """For alerts on a count over ``window`` (e.g. restarts a day): from one counted event until the window no
    longer holds it. The counter's sample before the event, up to one scrape interval older, is what leaves the
    window; one evaluation later the alert resolves, and the notification waits for ``group_interval``."""
    lower = window.seconds - profile.scrape_interval.seconds + profile.group_interval.seconds
    return Bounds(lower, window.seconds + profile.evaluation_interval.seconds + profile.group_interval.seconds)
