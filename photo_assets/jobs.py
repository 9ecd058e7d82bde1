"""Jobs a user launches from the UI's launchpad or the command line."""

import dagster as dg

from photo_assets.assets.names import (
    ADDED_FACES,
    CATALOG_ASSETS,
    FACE_INDEX,
    NEAR_DUPLICATES,
    PER_BATCH_ASSETS,
    PERSON_CLUSTERS,
    XMP_SIDECARS,
)
from photo_assets.assets.observations import label_log_observation
from photo_assets.people import EditOp, EditRequest, NothingToUndo, PeopleError, PeopleService
from photo_assets.resources import PhotoLibrary

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
    selection=dg.AssetSelection.assets(ADDED_FACES, FACE_INDEX, PERSON_CLUSTERS, NEAR_DUPLICATES),
    description="Read other tools' face regions, embed added faces, rebuild the face index, re-cluster people and "
    "group near-duplicates now (the schedule and automation do it on their own).",
)


class RelabelConfig(dg.Config):
    """One edit, as `photo-assets people` takes it. A person is its number (482913), "Unknown person 482913" or
    the name you gave it; a face is its face_id or a unique prefix of it."""

    operation: EditOp
    person: str = ""
    name: str = ""
    target: str = ""
    face: str = ""
    photo: str = ""
    box: str = ""


@dg.op(description="Append one edit to the label log.")
def apply_label_edit(context: dg.OpExecutionContext, config: RelabelConfig, photo_library: PhotoLibrary) -> None:
    request = EditRequest(config.operation, config.person, config.name, config.target, config.face, config.photo,
                          config.box)
    try:
        result = PeopleService(photo_library.layout).apply(request)
    except NothingToUndo:
        context.log.info("nothing to undo")
        return
    except PeopleError as error:
        raise dg.Failure(description=str(error)) from error
    context.log.info(f"{config.operation.value}: {result.edit.args}")
    context.log_event(label_log_observation(photo_library.layout))


@dg.job(description="Rename, merge, move, reject or undo — the same edits as `photo-assets people`, from the launchpad.")
def relabel():
    apply_label_edit()
