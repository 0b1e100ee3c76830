"""hll (filled in by its data-type module)."""
