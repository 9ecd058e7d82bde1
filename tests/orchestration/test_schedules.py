"""face_index_schedule: requests an index build only when face embeddings arrived since the last build."""

import datetime

import dagster as dg
import pytest

from photo_assets.schedules import face_index_schedule


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def evaluate(instance):
    tick = datetime.datetime.now(datetime.timezone.utc)
    return face_index_schedule(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))


def materialized(instance, asset: str, partition: str | None = None) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=asset, partition=partition))


def test_skips_before_any_face_was_embedded(instance):
    result = evaluate(instance)
    assert isinstance(result, dg.SkipReason) and "no face embeddings yet" in result.skip_message


def test_requests_a_build_when_new_faces_arrived_and_skips_once_built(instance):
    materialized(instance, "face_embeddings", "20261125-000000-00001")
    first = evaluate(instance)
    assert isinstance(first, dg.RunRequest) and "never built" in first.tags["photo_assets/why"]

    materialized(instance, "face_index")
    skipped = evaluate(instance)
    assert isinstance(skipped, dg.SkipReason)
    assert skipped.skip_message == "no face embeddings materialized since the index was last built"

    materialized(instance, "face_embeddings", "20261125-000000-00002")
    again = evaluate(instance)
    assert isinstance(again, dg.RunRequest) and "00002" in again.tags["photo_assets/why"]


def test_the_schedule_runs_by_default_every_five_minutes():
    assert face_index_schedule.cron_schedule == "*/5 * * * *"
    assert face_index_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
