"""Metrics as pure functions: one module per benchmark family."""
