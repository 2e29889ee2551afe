"""Reports: every figure a fold of the log, with the rows behind it (see `frame`)."""
