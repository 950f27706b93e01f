"""Progress while a suite runs: experiment, step, elapsed time and live SLIs; plain off a terminal."""
from __future__ import annotations

import io
import re
import time

from chaoslib_ext.gameday.progress import CLEAR_LINE, Progress
from chaoslib_ext.gameday.sli_sampler import describe

SAMPLE = {"at": 0.0, "availability": 0.87654, "latency_p95_s": 0.0421}


def test_describe_shows_availability_and_p95():
    assert describe(SAMPLE) == "availability 87.65% p95 0.042s"
    assert describe({"availability": None, "latency_p95_s": None}) == "availability n/a p95 n/a"
    assert describe(None) == "SLI n/a"


def test_plain_output_has_lines_only_with_elapsed_step_and_slis():
    out = io.StringIO()
    progress = Progress(stream=out, tty=False, sli=lambda: SAMPLE)
    progress("[1/3] burn-rate-alert.yaml")
    progress("  Action: processor-api-answers-every-request-with-503")
    text = out.getvalue()
    assert "\x1b" not in text and "\r" not in text
    lines = text.splitlines()
    assert re.fullmatch(r"\[ +\d+\.\ds\] \[1/3\] burn-rate-alert\.yaml  \(availability 87\.65% p95 0\.042s\)", lines[0])
    assert lines[1].endswith("Action: processor-api-answers-every-request-with-503  (availability 87.65% p95 0.042s)")


def test_no_sli_suffix_before_the_first_sample():
    out = io.StringIO()
    Progress(stream=out, tty=False, sli=lambda: None)("[1/1] pass.yaml")
    assert out.getvalue().rstrip().endswith("] [1/1] pass.yaml")


def test_a_plain_heartbeat_shows_the_slis_during_a_long_step():
    out = io.StringIO()
    progress = Progress(stream=out, tty=False, sli=lambda: SAMPLE, heartbeat_seconds=0.5).start()
    progress("[2/3] kafka-partition.yaml")
    time.sleep(2.3)
    progress.stop()
    beats = [line for line in out.getvalue().splitlines() if "still running" in line]
    assert beats and beats[0].endswith("[2/3] kafka-partition.yaml still running: availability 87.65% p95 0.042s")


def test_a_terminal_gets_a_status_line_redrawn_in_place():
    out = io.StringIO()
    progress = Progress(stream=out, tty=True, sli=lambda: SAMPLE).start()
    progress("[1/2] processor-pod-kill.yaml")
    progress("  Action: kill-one-processor-replica")
    time.sleep(1.3)
    progress.stop()
    text = out.getvalue()
    status = text.split(CLEAR_LINE)
    assert any(re.match(r"\[ +\d+\.\ds\] \[1/2\] processor-pod-kill\.yaml \| Action: kill-one-processor-replica \| "
                        r"availability 87\.65% p95 0\.042s$", part) for part in status)
    assert text.endswith(CLEAR_LINE), "the status line is cleared when the run ends"
