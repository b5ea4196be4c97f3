"""Real components for the tests: a Docker engine, registries, a local base image.

Stdlib only, so that .ci/run can start the same services before any virtualenv exists.
"""
