"""The MLPerf machinery both benchmarks share: the MLPerf log, run-and-time, the results layout, the
compliance checker's verdict, and the `run` task builder."""
