"""Tools over the pipeline: audit (inspect), report, scaffold (new), serve."""

__all__: list[str] = []   # the tools are its sub-packages: audit, report, scaffold, serve
