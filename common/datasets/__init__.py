"""Getting a benchmark's data ready: its manifest, resumable downloads, checksums with stamps, safe
extraction, and the download/prepare/verify steps and tasks both benchmarks share."""
