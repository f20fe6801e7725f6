"""Pure parts of the http service: routing, the health verdict, the state model, SSE framing."""
