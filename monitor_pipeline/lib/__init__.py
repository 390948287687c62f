"""Small shared helpers: environment parsing, retry with backoff, secret redaction."""
