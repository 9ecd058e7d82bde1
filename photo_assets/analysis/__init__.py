"""The analysis core: plain Python + numpy, no Dagster. One module per analysis."""
