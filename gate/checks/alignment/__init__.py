"""The alignment probe: two backends fed the same token ids, compared position by position and judged."""
