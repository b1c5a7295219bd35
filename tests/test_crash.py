"""kill -9 at random moments in every kind of writer: the index always opens, passes
`qa check`, keeps every acknowledged change, and the next run finishes cleanly.

A few kills per phase here; `scripts/crash_test.py` runs many more and prints the table.
"""

from __future__ import annotations

import random

import pytest

from tests.crash_harness import PHASES, api_kill_cycle, kill_cycle, summary

KILLS_PER_PHASE = 2


@pytest.mark.parametrize("phase", list(PHASES))
def test_killing_a_cli_writer_never_damages_the_index(tmp_path, phase):
    kills = kill_cycle(tmp_path, phase, KILLS_PER_PHASE, random.Random(phase))
    result = summary(kills)
    assert result["problems"] == [], result


def test_killing_the_server_mid_write_keeps_every_acknowledged_write(tmp_path):
    kills = api_kill_cycle(tmp_path, KILLS_PER_PHASE, random.Random(7))
    result = summary(kills)
    assert result["problems"] == [], result
    assert sum(k.acknowledged for k in kills) > 0
