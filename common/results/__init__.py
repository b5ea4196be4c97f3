"""MLPerf results people can read and trust: scores computed as MLCommons computes them, the
`systems/<system>.json` description, and an HTML report that puts them beside published results."""
