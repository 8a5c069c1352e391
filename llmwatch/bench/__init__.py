"""The benchmarks behind `llmwatch bench NAME` (tooling, not product): each module exposes a click command named
`command` and writes its section of BENCHMARKS.md through `report.write_section`. No product module imports it."""
