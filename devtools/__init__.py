"""Helpers the tests and the benchmarks share (neither imports the other): labelled face sets embedded through the
real pipeline (`labelled_faces`), clustering scores (`scoring`), photos made on the fly (`library`, `synthetic`) and
the services end-to-end tests and benchmarks start (`services`: the CLI as a subprocess, PostgreSQL, Redis, Celery,
dagster dev). Not part of the installed package."""
