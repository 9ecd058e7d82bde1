"""The review server's JSON API and images. Edits go through the one people service; the server only checks that
the body is a JSON object of strings and maps the service's errors to HTTP statuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from photo_assets.people import EditOp, EditRequest, EditResult, NotFound, NothingToUndo, PeopleError
from photo_assets.people.edits import TEXT_FIELDS
from photo_assets.review.images import ImageNotFound

IMAGE_CACHE_CONTROL = "private, max-age=86400"  # ids are content hashes: an image never changes under its URL


class BadRequest(ValueError):
    pass


# -- reading ---------------------------------------------------------------------------------------------------------


async def api_people(request: Request):
    view = request.app.state.review.service.view()
    return JSONResponse({"people": [view.person_json(p.person_id) for p in view.ordered_people()]})


async def api_person(request: Request):
    view = request.app.state.review.service.view()
    person_id = view.labels.resolve(request.path_params["person_id"])
    if person_id not in view.people:
        return JSONResponse({"error": f"no person {request.path_params['person_id']!r}"}, status_code=404)
    return JSONResponse(view.person_json(person_id, with_faces=True))


async def api_suggestions(request: Request):
    view = request.app.state.review.service.view()
    return JSONResponse({"suggestions": [view.suggestion_json(s) for s in view.suggestions]})


async def api_unsorted(request: Request):
    view = request.app.state.review.service.view()
    groups = view.unsorted()
    return JSONResponse({reason: [view.face_json(face.face_id) for face in faces] for reason, faces in groups.items()})


# -- editing ---------------------------------------------------------------------------------------------------------


def edit_request(body: Any) -> EditRequest:
    """The service's request from a JSON body: an object with a known `op` and string fields."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    op = body.get("op")
    if op not in set(EditOp):
        raise BadRequest(f"unknown op {op!r}: one of {', '.join(EditOp)}")
    fields = {}
    for name in TEXT_FIELDS:
        value = body.get(name) or ""
        if not isinstance(value, str):
            raise BadRequest(f"{name!r} must be a string")
        fields[name] = value
    return EditRequest(EditOp(op), **fields)


def result_json(result: EditResult) -> dict[str, Any]:
    answer = {"edit_id": result.edit.edit_id, "op": str(result.edit.op), "person_id": result.person_id,
              "args": result.edit.args}
    if result.undone is not None:
        answer |= {"undone": result.undone.edit_id, "undone_op": str(result.undone.op)}
    return answer


async def api_edits(request: Request):
    review = request.app.state.review
    try:
        request_ = edit_request(json.loads(await request.body()))
        result = await run_in_threadpool(review.service.apply, request_)
    except (ValueError, UnicodeDecodeError) as error:
        status = 404 if isinstance(error, NotFound) else 409 if isinstance(error, NothingToUndo) else 400
        message = str(error) if isinstance(error, (BadRequest, PeopleError)) else "the body must be JSON"
        return JSONResponse({"error": message}, status_code=status)
    answer = result_json(result) | {"op": str(request_.op)}
    answer["dagster"] = await run_in_threadpool(review.observer.report)
    return JSONResponse(answer)


# -- images ----------------------------------------------------------------------------------------------------------


def _cached(path: Path) -> Response | None:
    """A crop or preview made before, answered at once (a few kB: read here, no thread, no view)."""
    try:
        payload = path.read_bytes()
    except FileNotFoundError:
        return None
    return Response(payload, media_type="image/jpeg", headers={"Cache-Control": IMAGE_CACHE_CONTROL})


async def _image(request: Request, path: Path, make) -> Response:
    hit = _cached(path)
    if hit is not None:
        return hit
    try:
        made = await run_in_threadpool(make, request.app.state.review.service.view())
    except ImageNotFound as error:
        return JSONResponse({"error": str(error)}, status_code=404)
    return FileResponse(made, media_type="image/jpeg", headers={"Cache-Control": IMAGE_CACHE_CONTROL})


async def face_image(request: Request):
    images, face_id = request.app.state.review.images, request.path_params["face_id"]
    return await _image(request, images.face_path(face_id), lambda view: images.face(view, face_id))


async def photo_image(request: Request):
    images, photo_id = request.app.state.review.images, request.path_params["photo_id"]
    return await _image(request, images.photo_path(photo_id), lambda view: images.photo(view, photo_id))


async def photo_thumbnail(request: Request):
    images, photo_id = request.app.state.review.images, request.path_params["photo_id"]
    return await _image(request, images.thumbnail_path(photo_id), lambda view: images.thumbnail(view, photo_id))
