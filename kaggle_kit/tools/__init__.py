"""Tools over the pipeline: audit (inspect), report, scaffold (new), serve."""
