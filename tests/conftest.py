"""Shared test fixtures. Corpus helpers live in microgen.testing.corpus (require_model, seeded_inputs)."""
