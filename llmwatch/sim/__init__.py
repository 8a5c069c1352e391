"""The traffic simulator (tooling, not product): a corpus of prompts and answers with known ground truth, named
scenarios with injected regressions, the `simulated` engine (a gateway plugin), the load generator and the canary
traffic model of the canary benchmark. No product module imports it."""
