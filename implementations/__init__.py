"""Published MLPerf implementations (MLCommons submission folders) as Backend.AI runs."""
