"""Remote inference over openpi's websocket protocol, the side every client needs: the wire format, the
key scheme, API keys and the client link (the server, `vla-ros serve`, is `vla_ros.serving`)."""

DEFAULT_MAX_MESSAGE_MB = 16.0  # the largest message either side accepts by default (settable on both)
