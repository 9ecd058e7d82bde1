"""The people review pages (`photo-assets review`): see app.py. Kept light: the assets import review_url from here."""

import os

REVIEW_URL_ENV = "PHOTO_ASSETS_REVIEW_URL"
DEFAULT_REVIEW_URL = "http://127.0.0.1:3001/"


def review_url() -> str:
    """Where the review pages are served (scripts/run.sh sets it when it starts them), for links from the Dagster UI."""
    return os.environ.get(REVIEW_URL_ENV) or DEFAULT_REVIEW_URL
