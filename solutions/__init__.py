"""Solutions to the exercises at the end of each notebook, one module per chapter (shown in the book)."""
