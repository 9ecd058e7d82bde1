"""Thin Dagster wrappers that run the analysis core per batch and record what came out."""
