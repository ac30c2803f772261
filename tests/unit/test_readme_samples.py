"""The README's sample events are what the publisher's code makes today.

``python -m tools.event_samples`` makes them again.
"""

from __future__ import annotations

import pytest

from tests.downstream_helpers import assert_valid_event
from tools import event_samples


def test_the_readme_shows_one_current_sample_per_detail_type() -> None:
    # GIVEN the README as committed WHEN its samples are made again from the code
    readme = event_samples.README.read_text(encoding="utf-8")

    # THEN nothing changes (run python -m tools.event_samples after changing the detail)
    assert event_samples.render(readme) == readme


@pytest.mark.parametrize("sample", event_samples.SAMPLES, ids=[s.detail_type for s in event_samples.SAMPLES])
def test_each_sample_carries_a_sequence_and_holds_to_its_schema(sample: event_samples.Sample) -> None:
    event = event_samples.sample_event(sample)
    detail = event["detail"]
    assert detail["sequence"] >= 1 and detail["resource"]["uri"] == detail["calendly"]["uri"]
    assert_valid_event(event["detail-type"], detail)
