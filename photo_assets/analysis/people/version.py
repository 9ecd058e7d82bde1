"""The people method's version: derived from every constant that decides which face lands in which person, so a
changed threshold marks the face index and person_clusters stale (and they re-run) without anyone remembering to
bump a string."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from photo_assets.analysis.people import clustering, index, neighbours, quality, suggestions, thresholds

# The method's name; the parameters' hash follows it.
METHOD = "people-v2"
# Module constants that change the outcome (not block sizes or sample sizes, which only change speed and memory).
PARAMETERS = {
    clustering: ("REFINE_NEIGHBOURS", "STRAGGLER_FACTOR"),
    index: ("INDEX_TREES", "SEARCH_K_PER_NEIGHBOUR", "NEIGHBOURS", "BRUTE_FORCE_MAX_PAIRS", "IVF_PROBE",
            "IVF_ITERATIONS", "IVF_SEED", "ANNOY_SEED"),
    neighbours: ("REVERSE_REACH",),
    quality: ("MIN_FACE_PIXELS", "MIN_SHARPNESS", "MIN_EYE_RATIO"),
    suggestions: ("SCALE_NEIGHBOUR", "ANY_DISTANCE", "MISSING_SCALE", "MAX_SUGGESTIONS", "NAMED_FIRST_SCORE"),
}


def method_parameters() -> dict[str, float]:
    constants = {f"{module.__name__.rsplit('.', 1)[-1]}.{name}": getattr(module, name)
                 for module, names in PARAMETERS.items() for name in names}
    per_descriptor = {f"thresholds.{descriptor}.{name}": value
                      for descriptor, chosen in thresholds.BY_DESCRIPTOR.items()
                      for name, value in asdict(chosen).items()}
    return constants | per_descriptor


def people_version() -> str:
    digest = hashlib.sha256(json.dumps(method_parameters(), sort_keys=True).encode()).hexdigest()
    return f"{METHOD}-{digest[:10]}"
