"""Clinical pages (thin: parse, call a service or selector, render)."""
