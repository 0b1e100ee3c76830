"""bitmaps (filled in by its data-type module)."""
