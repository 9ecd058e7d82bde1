"""`photo-assets review`: the people of a library in the browser — see faces in their photos, and approve, reject,
rename, merge and move them with a click. Server-rendered pages with a little plain JavaScript, every asset served
from this package (no CDN, no build step). Every action is the same edit the CLI makes (PeopleEditor), appended to
the same label log and reported on the `label_log` asset, so person_clusters re-materializes by automation.

Security (it writes the user's labels; any web site the user visits can send requests to localhost):
- binds 127.0.0.1 unless told otherwise;
- a request whose Host is not the bound address or localhost (with the port) gets 400 (DNS rebinding);
- a state-changing request needs the per-process token the pages embed (header X-Review-Token) and an Origin (or
  Referer) equal to the page's own origin, else 403 and nothing changes (CSRF);
- images are addressed by id only (hex, validated); a file is read only from the library (a catalogued photo whose
  path resolves inside it) or the cache in the data folder.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import re
import secrets
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from photo_assets.analysis.people import UNKNOWN_NAME
from photo_assets.people_editor import PeopleEditor, PeopleError
from photo_assets.review.data import REJECTED_REASON, ReviewData, View
from photo_assets.review.images import ImageCache, ImageNotFound
from photo_assets.storage import DataLayout, LabelLog

PACKAGE_DIR = Path(__file__).parent
TOKEN_HEADER = "x-review-token"
MAX_BODY = 64 * 1024  # bytes of a request body: an edit is a few hundred
NAME_MAX = 200  # characters; a longer "name" is a paste gone wrong
FACE_ID = re.compile(r"^[0-9a-f]{6,64}$")
PHOTO_ID = re.compile(r"^[0-9a-f]{16,64}$")
PERSON_ID = re.compile(r"^[0-9]{1,12}$")
OPS = ["rename", "merge", "move", "reject", "not_a_face", "not_same", "approve", "undo"]
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
IMAGE_CACHE_CONTROL = "private, max-age=86400"  # ids are content hashes: an image never changes under its URL
REASON_TITLES = {
    "too_small": "Too small",
    "blurred": "Blurred",
    "profile": "Seen from the side",
    "unsure": "Unsure",
    REJECTED_REASON: "Taken out of their person (placed again at the next update)",
}
log = logging.getLogger(__name__)


class EditError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, port: int) -> set[str] | None:
    """The Host headers this server answers: the bound address and localhost, with the port. None (any) when bound
    to every interface, where the machine's names are not known here (the token and Origin checks still apply)."""
    if host in ("0.0.0.0", "::", ""):
        return None
    bound = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return {f"{bound}:{port}", f"localhost:{port}"} | ({f"127.0.0.1:{port}"} if is_loopback(host) else set())


class Guard:
    """ASGI middleware: Host check on every request; token and same-origin check on state-changing ones."""

    def __init__(self, app, hosts: set[str] | None, token: str):
        self.app, self.hosts, self.token = app, hosts, token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        host = headers.get("host", "")
        if self.hosts is not None and host.lower() not in self.hosts:
            response = JSONResponse({"error": f"unexpected Host header {host!r}"}, status_code=400)
            return await response(scope, receive, send)
        if scope["method"] in STATE_CHANGING:
            origin = f"http://{host}"
            sent_origin = headers.get("origin")
            referer = headers.get("referer", "")
            same_origin = sent_origin == origin if sent_origin else referer.startswith(origin + "/")
            token_ok = secrets.compare_digest(headers.get(TOKEN_HEADER, ""), self.token)
            if not (same_origin and token_ok):
                reason = "missing or wrong token" if not token_ok else "request not from this page's origin"
                response = JSONResponse({"error": f"forbidden: {reason}"}, status_code=403)
                return await response(scope, receive, send)
        return await self.app(scope, receive, send)


class Observer:
    """Reports the label log's new version to the Dagster instance (as `photo-assets people` does), when one is
    configured: person_clusters turns stale and its automation re-runs it."""

    def __init__(self, layout: DataLayout, dagster_home: Path | None):
        self.layout = layout
        self.dagster_home = dagster_home
        self.enabled = dagster_home is not None and (dagster_home / "dagster.yaml").exists()
        self._instance = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Import Dagster and open the instance in the background, so the first edit is not the one that waits."""
        if self.enabled:
            threading.Thread(target=self._instance_now, daemon=True).start()

    def _instance_now(self):
        try:
            import dagster as dg

            import photo_assets.jobs  # noqa: F401 - label_log_observation's module, imported once

            with self._lock:
                if self._instance is None:
                    self._instance = dg.DagsterInstance.from_config(str(self.dagster_home))
        except Exception as error:  # noqa: BLE001 - report() says it again, with the edit
            log.warning("Dagster instance not available: %s", error)
        return self._instance

    def report(self) -> str | None:
        if not self.enabled:
            return None
        try:
            import dagster as dg

            from photo_assets.jobs import label_log_observation

            with self._lock:
                if self._instance is None:
                    self._instance = dg.DagsterInstance.from_config(str(self.dagster_home))
                self._instance.report_runless_asset_event(label_log_observation(self.layout))
            return "reported"
        except Exception as error:  # noqa: BLE001 - the edit is recorded; the next CLI command reports it too
            log.warning("could not report the label log to Dagster: %s", error)
            return f"not reported: {error}"


def _date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else "no date"


def person_json(view: View, person_id: str, with_faces: bool = False) -> dict[str, Any]:
    person = view.people[person_id]
    result = {
        "person_id": person.person_id,
        "name": person.name,
        "named": person.named,
        "faces": len(person.face_ids),
        "photos": person.photos,
        "representative_face_id": person.representative_face_id,
    }
    if with_faces:
        result["face_list"] = [face_json(view, face.face_id) for face in view.person_faces(person_id)]
        result["suggestions"] = [suggestion_json(s) for s in view.suggestions_for(person_id)]
    return result


def face_json(view: View, face_id: str) -> dict[str, Any]:
    face = view.faces[face_id]
    photo = view.photos.get(face.photo_id)
    return {
        "face_id": face.face_id,
        "photo_id": face.photo_id,
        "person_id": face.person_id,
        "name": face.name,
        "assigned_by": face.assigned_by,
        "distance": face.distance,
        "unsorted_reason": face.unsorted_reason,
        "captured_at": photo.captured_at.isoformat() if photo and photo.captured_at else None,
    }


def suggestion_json(suggestion) -> dict[str, Any]:
    return dict(vars(suggestion))


def create_app(
    data_dir: Path,
    library_dir: Path,
    token: str | None = None,
    host: str = "127.0.0.1",
    port: int = 3001,
    dagster_home: Path | None = None,
) -> Starlette:
    """The review pages for one data folder; each edit is reported to the Dagster instance in `dagster_home` (none:
    edits are only written to the label log, and the next `photo-assets` command or sensor tick reports them)."""
    layout, library_dir = DataLayout(Path(data_dir).resolve()), Path(library_dir).resolve()
    token = token or secrets.token_urlsafe(32)
    data = ReviewData(layout)
    images = ImageCache(layout, library_dir)
    observer = Observer(layout, dagster_home)
    edit_lock = threading.Lock()  # one edit at a time in this process (the log itself is locked across processes)
    templates = Environment(
        loader=FileSystemLoader(PACKAGE_DIR / "templates"), autoescape=select_autoescape(["html"])
    )
    templates.globals.update(token=token, date=_date, unknown_name=UNKNOWN_NAME, reason_titles=REASON_TITLES)

    def render(name: str, status: int = 200, **context) -> HTMLResponse:
        view = data.view()
        context.setdefault("view", view)
        context.setdefault("title", "People")
        page = templates.get_template(name).render(
            suggestions_count=len(view.suggestions),
            unsorted_count=sum(len(faces) for faces in view.unsorted().values()),
            names=view.names(),
            **context,
        )
        return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})

    def not_found(message: str) -> HTMLResponse:
        return render("not_found.html", status=404, message=message, title="Not found")

    # -- pages -----------------------------------------------------------------------------------------------------

    async def people_page(request: Request):
        return render("people.html", people=data.view().ordered_people())

    async def person_page(request: Request):
        person_id = request.path_params["person_id"]
        view = data.view()
        if not PERSON_ID.match(person_id):
            return not_found("no such person")
        resolved = view.labels.resolve(person_id)
        if resolved != person_id and resolved in view.people:
            return RedirectResponse(f"/people/{resolved}", status_code=303)
        if person_id not in view.people:
            return not_found(f"no person {person_id} (merged away, or every face moved out)")
        return render(
            "person.html",
            person=view.people[person_id],
            faces=view.person_faces(person_id),
            suggestions=view.suggestions_for(person_id),
            title=view.people[person_id].name,
        )

    async def photo_page(request: Request):
        photo_id = request.path_params["photo_id"]
        view = data.view()
        if not PHOTO_ID.match(photo_id) or photo_id not in view.photos:
            return not_found("no such photo")
        photo = view.photos[photo_id]
        boxes = [view.boxes[face_id] for face_id in view.photo_boxes.get(photo_id, [])]
        return render("photo.html", photo=photo, boxes=boxes, title=Path(photo.path).name)

    async def suggestions_page(request: Request):
        return render("suggestions.html", suggestions=data.view().suggestions, title="Same person?")

    async def unsorted_page(request: Request):
        return render("unsorted.html", groups=data.view().unsorted(), title="Unsorted faces")

    # -- images ----------------------------------------------------------------------------------------------------

    def image_response(path: Path) -> Response:
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": IMAGE_CACHE_CONTROL})

    def cached(path: Path) -> Response | None:
        """A crop or preview made before, answered at once (a few kB: read here, no thread, no view)."""
        try:
            payload = path.read_bytes()
        except FileNotFoundError:
            return None
        return Response(payload, media_type="image/jpeg", headers={"Cache-Control": IMAGE_CACHE_CONTROL})

    async def face_image(request: Request):
        face_id = request.path_params["face_id"]
        if not FACE_ID.match(face_id):
            return JSONResponse({"error": "not found"}, status_code=404)
        hit = cached(images.face_path(face_id))
        if hit is not None:
            return hit
        try:
            return image_response(await run_in_threadpool(lambda: images.face(data.view(), face_id)))
        except ImageNotFound as error:
            return JSONResponse({"error": str(error)}, status_code=404)

    async def photo_image(request: Request):
        photo_id = request.path_params["photo_id"]
        if not PHOTO_ID.match(photo_id):
            return JSONResponse({"error": "not found"}, status_code=404)
        hit = cached(images.photo_path(photo_id))
        if hit is not None:
            return hit
        try:
            return image_response(await run_in_threadpool(lambda: images.photo(data.view(), photo_id)))
        except ImageNotFound as error:
            return JSONResponse({"error": str(error)}, status_code=404)

    # -- the API ---------------------------------------------------------------------------------------------------

    async def api_people(request: Request):
        view = data.view()
        return JSONResponse({"people": [person_json(view, p.person_id) for p in view.ordered_people()]})

    async def api_person(request: Request):
        view = data.view()
        person_id = request.path_params["person_id"]
        if not PERSON_ID.match(person_id) or view.labels.resolve(person_id) not in view.people:
            return JSONResponse({"error": f"no person {person_id!r}"}, status_code=404)
        return JSONResponse(person_json(view, view.labels.resolve(person_id), with_faces=True))

    async def api_suggestions(request: Request):
        return JSONResponse({"suggestions": [suggestion_json(s) for s in data.view().suggestions]})

    async def api_unsorted(request: Request):
        view = data.view()
        return JSONResponse(
            {reason: [face_json(view, f.face_id) for f in faces] for reason, faces in view.unsorted().items()}
        )

    def text_field(body: dict, name: str, required: bool = True) -> str:
        value = body.get(name)
        if value is None or value == "":
            if required:
                raise EditError(400, f"{name!r} is required")
            return ""
        if not isinstance(value, str):
            raise EditError(400, f"{name!r} must be a string")
        if len(value) > NAME_MAX:
            raise EditError(400, f"{name!r} is longer than {NAME_MAX} characters")
        return value

    def face_field(body: dict) -> str:
        face = text_field(body, "face").strip().lower()
        if not FACE_ID.match(face):
            raise EditError(400, "'face' must be a face id (hexadecimal, at least 6 characters)")
        return face

    def apply_edit(body: dict) -> dict[str, Any]:
        op = body.get("op")
        if op not in OPS:
            raise EditError(400, f"unknown op {op!r}: one of {', '.join(OPS)}")
        with edit_lock:
            if op == "undo":
                log_ = LabelLog(layout.label_log)
                edit = log_.undo()
                if edit is None:
                    raise EditError(409, "nothing to undo")
                undone = next(e for e in log_.read().edits if e.edit_id == edit.args["edit_id"])
                args = undone.args
                person = args.get("person_id") or args.get("target") or args.get("source")
                return {"edit_id": edit.edit_id, "op": op, "undone": undone.edit_id, "undone_op": str(undone.op),
                        "person_id": person}
            try:
                editor = PeopleEditor(layout)
                if op == "rename":
                    name = text_field(body, "name")
                    if not name.strip():
                        raise EditError(400, "a name cannot be empty")
                    edit = editor.rename(text_field(body, "person"), name)
                    person = editor.log.state().resolve(edit.args["person_id"])
                elif op == "merge":
                    edit = editor.merge(text_field(body, "person"), text_field(body, "target"))
                    person = edit.args["target"]
                elif op == "move":
                    target = text_field(body, "target", required=False) or text_field(body, "person")
                    edit = editor.move(face_field(body), target)
                    person = edit.args["person_id"]
                elif op == "reject":
                    face = face_field(body)
                    edit = editor.reject(face)
                    person = edit.args["person_id"]
                elif op == "not_a_face":
                    face = face_field(body)
                    previous = editor.face(face)["person_id"]
                    edit = editor.reject(face, not_a_face=True)
                    person = previous
                elif op == "not_same":
                    edit = editor.not_same(text_field(body, "person"), text_field(body, "other"))
                    person = edit.args["person_id"]
                else:  # approve
                    edit = editor.approve(face_field(body))
                    person = edit.args["person_id"]
            except PeopleError as error:
                message = str(error)
                raise EditError(404 if message.startswith(("no person", "no face")) else 400, message) from error
        return {"edit_id": edit.edit_id, "op": op, "person_id": person, "args": edit.args}

    async def api_edits(request: Request):
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return JSONResponse({"error": "the body must be JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        try:
            result = await run_in_threadpool(apply_edit, body)
        except EditError as error:
            return JSONResponse({"error": error.message}, status_code=error.status)
        result["dagster"] = await run_in_threadpool(observer.report)
        return JSONResponse(result)

    routes = [
        Route("/", people_page),
        Route("/people/{person_id}", person_page),
        Route("/photo/{photo_id}", photo_page),
        Route("/suggestions", suggestions_page),
        Route("/unsorted", unsorted_page),
        Route("/faces/{face_id}.jpg", face_image),
        Route("/photos/{photo_id}.jpg", photo_image),
        Route("/api/people", api_people),
        Route("/api/people/{person_id}", api_person),
        Route("/api/suggestions", api_suggestions),
        Route("/api/unsorted", api_unsorted),
        Route("/api/edits", api_edits, methods=["POST"]),
        Mount("/static", StaticFiles(directory=PACKAGE_DIR / "static"), name="static"),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app):
        observer.warm_up()
        yield

    app = Starlette(routes=routes, lifespan=lifespan, max_body_size=MAX_BODY)
    app.add_middleware(Guard, hosts=allowed_hosts(host, port), token=token)
    app.state.token = token
    app.state.data = data
    return app


def serve(
    data_dir: Path, library_dir: Path, dagster_home: Path | None, host: str = "127.0.0.1", port: int = 3001
) -> None:
    import uvicorn

    if not is_loopback(host):
        print(
            f"warning: serving on {host}: anyone who can reach this address on your network can see your photos "
            "and edit your labels (use 127.0.0.1 unless you mean it)",
            flush=True,
        )
    app = create_app(data_dir, library_dir, host=host, port=port, dagster_home=dagster_home)
    shown = f"[{host}]" if ":" in host else host
    print(f"people review on http://{shown}:{port}/", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
