"""lists (filled in by its data-type module)."""
