"""People: group face embeddings into persons a user can name, and keep the user's word over every re-run.

One module per concern: `vectors` (unit vectors), `index` (the Annoy forest and exact neighbours), `neighbours`
(hybrid matching: index for indexed faces, brute force for new ones), `clustering` (how faces become groups),
`naming` (stable "Unknown person NNNNNN" numbers), `persons` (all of it, with the user's edits, into two tables).
"""

from photo_assets.analysis.people.index import FaceIndex, build_index, index_recall
from photo_assets.analysis.people.naming import UNKNOWN_NAME, unknown_number
from photo_assets.analysis.people.persons import (
    ASSIGNED_BY_AUTO,
    ASSIGNED_BY_FILE,
    ASSIGNED_BY_NAME,
    ASSIGNED_BY_USER,
    FACE_SCHEMA,
    PEOPLE_SCHEMA,
    PeopleResult,
    cluster_people,
)
from photo_assets.analysis.people.vectors import EMBEDDING_DIMS, normalise

__all__ = [
    "ASSIGNED_BY_AUTO",
    "ASSIGNED_BY_FILE",
    "ASSIGNED_BY_NAME",
    "ASSIGNED_BY_USER",
    "EMBEDDING_DIMS",
    "FACE_SCHEMA",
    "PEOPLE_SCHEMA",
    "UNKNOWN_NAME",
    "FaceIndex",
    "PeopleResult",
    "build_index",
    "cluster_people",
    "index_recall",
    "normalise",
    "unknown_number",
]
