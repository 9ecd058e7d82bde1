"""People as the user sees and edits them: one vocabulary of edits (`edits`), one read model with the label log
applied (`view`), and one service that validates edits and appends them to the log (`service`). The command line,
the `relabel` job and the review pages are thin callers of PeopleService; how faces become people is
photo_assets.analysis.people."""

from photo_assets.people.edits import EditOp, EditRequest, EditResult, NotFound, NothingToUndo, PeopleError
from photo_assets.people.service import PeopleService
from photo_assets.people.view import PeopleView

__all__ = [
    "EditOp",
    "EditRequest",
    "EditResult",
    "NotFound",
    "NothingToUndo",
    "PeopleError",
    "PeopleService",
    "PeopleView",
]
