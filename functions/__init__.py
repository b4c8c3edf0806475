"""Function triggers (thin): parse, call the domain, shape the response."""
