"""The review pages: server-rendered HTML from the one people view. Each handler reads the app's Review
(photo_assets.review.app) from `request.app.state.review`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from photo_assets.analysis.people import UNKNOWN_NAME
from photo_assets.analysis.people.quality import BLURRED, PROFILE, TOO_SMALL, UNSURE
from photo_assets.analysis.regions import ONE_NAME_ON_TWO_FACES, TWO_NAMES_ON_ONE_FACE
from photo_assets.people.view import REJECTED_REASON

TEMPLATES_DIR = Path(__file__).parent / "templates"
PERSON_ID = r"[0-9]{1,12}"
PHOTO_ID = r"[0-9a-f]{16,64}"
REASON_TITLES = {
    TOO_SMALL: "Too small",
    BLURRED: "Blurred",
    PROFILE: "Seen from the side",
    UNSURE: "Unsure",
    REJECTED_REASON: "Taken out of their person (placed again at the next update)",
}

CONFLICT_TITLES = {
    TWO_NAMES_ON_ONE_FACE: "Files give one face two names",
    ONE_NAME_ON_TWO_FACES: "Files give one name to two faces of a photo",
}


def _date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else "no date"


def templates(token: str) -> Environment:
    environment = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(["html"]))
    environment.globals.update(token=token, date=_date, unknown_name=UNKNOWN_NAME, reason_titles=REASON_TITLES)
    return environment


def render(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
    review = request.app.state.review
    view = context.setdefault("view", review.service.view())
    context.setdefault("title", "People")
    page = review.templates.get_template(name).render(
        suggestions_count=len(view.suggestions),
        unsorted_count=sum(len(faces) for faces in view.unsorted().values()),
        names=view.names(),
        **context,
    )
    return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})


def not_found(request: Request, message: str) -> HTMLResponse:
    return render(request, "not_found.html", status=404, message=message, title="Not found")


async def people_page(request: Request):
    view = request.app.state.review.service.view()
    return render(request, "people.html", view=view, people=view.ordered_people())


async def person_page(request: Request):
    person_id = request.path_params["person_id"]
    view = request.app.state.review.service.view()
    resolved = view.labels.resolve(person_id)
    if resolved != person_id and resolved in view.people:
        return RedirectResponse(f"/people/{resolved}", status_code=303)
    if person_id not in view.people:
        return not_found(request, f"no person {person_id} (merged away, or every face moved out)")
    person = view.people[person_id]
    return render(request, "person.html", view=view, person=person, faces=view.person_faces(person_id),
                  suggestions=view.suggestions_for(person_id), title=person.name)


async def photo_page(request: Request):
    photo_id = request.path_params["photo_id"]
    view = request.app.state.review.service.view()
    if photo_id not in view.photos:
        return not_found(request, "no such photo")
    photo = view.photos[photo_id]
    boxes = [view.boxes[face_id] for face_id in view.photo_boxes.get(photo_id, [])]
    return render(request, "photo.html", view=view, photo=photo, boxes=boxes, pending=view.pending_faces(photo_id),
                  title=Path(photo.path).name)


async def suggestions_page(request: Request):
    view = request.app.state.review.service.view()
    return render(request, "suggestions.html", view=view, suggestions=view.suggestions, title="Same person?")


async def unsorted_page(request: Request):
    view = request.app.state.review.service.view()
    return render(request, "unsorted.html", view=view, groups=view.unsorted(), conflicts=view.conflicts,
                  conflict_titles=CONFLICT_TITLES, title="Unsorted faces")
