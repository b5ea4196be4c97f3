"""GNMT (MLPerf Training translation) on WMT16 English-German."""
