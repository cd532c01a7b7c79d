"""Remote inference over openpi's websocket protocol: wire format, `vla-ros serve`, the client link."""
