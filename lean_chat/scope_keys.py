"""Every key lean_chat keeps in an ASGI request's scope, named once (the values are what each key holds)."""

from __future__ import annotations

__all__ = ["AUTH_USER", "BODY_SEND", "CLIENT_REQUEST_ID", "FOLLOWED", "REQUEST_ID", "STATUS", "STREAM"]

# The user id the authenticator verified (str), checked against the body's or query's `userId`.
AUTH_USER = "lean_chat.user"
# The server's own `send`, for a stream's body frames, when no middleware on the lane changes bodies (the stream lane
# sets it: each token batch then passes no middleware's `send` wrapper).
BODY_SEND = "lean_chat.body_send"
# The request's id (str), chosen by the dispatcher, for the answers and the log line.
REQUEST_ID = "lean_chat.http.request_id"
# Set as well when that id is the client's own.
CLIENT_REQUEST_ID = "lean_chat.client_request_id"
# The status of an answer other than a stream, written on the stream lane, for the request log.
STATUS = "lean_chat.status"
# The plain stream of the request, read when it ends, for the metrics and the log line.
STREAM = "lean_chat.stream"
# The resumable turn as this request's reader saw it end (a follow.FollowedTurn), read when the request ends, for
# the log line only: its producer counts the stream in the metrics itself.
FOLLOWED = "lean_chat.followed"
