"""After a search: pick, rightsize, train/transfer, seed, report."""
