"""photo_assets: offline analysis of personal photo libraries as Dagster assets."""
