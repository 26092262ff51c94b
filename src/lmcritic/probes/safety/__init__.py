"""Safety and privacy probes: toxic generations, refusals, PII elicitation, memorization."""
