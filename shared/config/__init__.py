"""keepalived.conf, read exactly as keepalived reads it: lexer, typed model, validation."""
