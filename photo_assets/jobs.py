"""Jobs a user launches from the UI's launchpad or the command line."""

import enum

import dagster as dg

from photo_assets.assets.names import (
    ANALYSIS_GROUP,
    CATALOG_GROUP,
    FACE_INDEX,
    FACES_GROUP,
    LABEL_LOG,
    PERSON_CLUSTERS,
    XMP_SIDECARS,
)
from photo_assets.people_editor import PeopleEditor, PeopleError
from photo_assets.resources import PhotoLibrary
from photo_assets.storage import DataLayout, LabelLog

# What the sensor asks for each new batch; faces follow in runs of their own (declarative automation).
CATALOG_ASSETS = dg.AssetSelection.groups(CATALOG_GROUP, ANALYSIS_GROUP)
# The tag an observation carries its data version in (what an observable source asset's function returns).
DATA_VERSION_TAG = "dagster/data_version"
PER_BATCH_ASSETS = CATALOG_ASSETS | dg.AssetSelection.groups(FACES_GROUP)

analyse_batch_job = dg.define_asset_job(
    "analyse_batch",
    selection=PER_BATCH_ASSETS,
    description="Every per-batch analysis of one batch: catalog, colours, locations, faces.",
)
catalog_batch_job = dg.define_asset_job(
    "catalog_batch",
    selection=CATALOG_ASSETS,
    description="The quick per-batch analyses of one batch: catalog, colours, locations (no face models).",
)

write_sidecars_job = dg.define_asset_job(
    "write_sidecars",
    selection=dg.AssetSelection.assets(XMP_SIDECARS),
    description="The XMP sidecars of one batch, from its photos, places, colours and the people as they are now.",
)

update_people_job = dg.define_asset_job(
    "update_people",
    selection=dg.AssetSelection.assets(FACE_INDEX, PERSON_CLUSTERS),
    description="Rebuild the face index and re-cluster people now (the schedule and automation do it on their own).",
)


class Operation(enum.Enum):
    RENAME = "rename"  # person -> name (a name someone has already merges the two)
    MERGE = "merge"  # person -> target
    MOVE = "move"  # face -> person (a new name starts a new person)
    MOVE_TO_NEW_PERSON = "move_to_new_person"  # face -> a new unnamed person
    REJECT = "reject"  # face is not its person; it never goes back to that person
    NOT_A_FACE = "not_a_face"  # face is no face at all
    NOT_SAME = "not_same"  # person and target are two people: never suggested as one again
    APPROVE = "approve"  # face is rightly in its person: it becomes the user's word
    UNDO = "undo"  # cancel the latest edit


class RelabelConfig(dg.Config):
    """One edit, as `photo-assets people` takes it. A person is its number (482913), "Unknown person 482913" or
    the name you gave it; a face is its face_id or a unique prefix of it."""

    operation: Operation
    person: str = ""
    name: str = ""
    target: str = ""
    face: str = ""


def label_log_observation(layout: DataLayout) -> dg.AssetObservation:
    """The label log's new data version: makes person_clusters stale, and its automation re-runs it."""
    return dg.AssetObservation(asset_key=LABEL_LOG, tags={DATA_VERSION_TAG: LabelLog(layout.label_log).version()})


@dg.op(description="Append one edit to the label log.")
def apply_label_edit(context: dg.OpExecutionContext, config: RelabelConfig, photo_library: PhotoLibrary) -> None:
    layout = photo_library.layout
    operation = config.operation
    try:
        if operation is Operation.UNDO:
            edit = photo_library.label_log().undo()
        else:
            editor = PeopleEditor(layout)
            edit = {
                Operation.RENAME: lambda: editor.rename(config.person, config.name),
                Operation.MERGE: lambda: editor.merge(config.person, config.target),
                Operation.MOVE: lambda: editor.move(config.face, config.person),
                Operation.MOVE_TO_NEW_PERSON: lambda: editor.move_to_new_person(config.face),
                Operation.REJECT: lambda: editor.reject(config.face),
                Operation.NOT_A_FACE: lambda: editor.reject(config.face, not_a_face=True),
                Operation.NOT_SAME: lambda: editor.not_same(config.person, config.target),
                Operation.APPROVE: lambda: editor.approve(config.face),
            }[operation]()
    except PeopleError as error:
        raise dg.Failure(description=str(error)) from error
    context.log.info(f"{operation.value}: {edit.args if edit else 'nothing to undo'}")
    context.log_event(label_log_observation(layout))


@dg.job(description="Rename, merge, move, reject or undo — the same edits as `photo-assets people`, from the launchpad.")
def relabel():
    apply_label_edit()
