"""The trainer: the loop (which knows no method), the optimiser, exact resume, the run log."""
