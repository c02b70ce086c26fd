"""A request body limit for every app: 413 before a large body is read into memory.

    install_body_limit(app, settings.max_body_bytes)     # one line in an app factory

A declared `Content-Length` above the limit is refused at once; a body sent without one (chunked)
is counted as it arrives and refused as soon as it passes the limit. Routes that stream their
own body (ingestion's `/v1/events`) keep their own, identical, check.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.web.errors import error_response


class BodyTooLarge(HTTPException):
    def __init__(self, max_bytes: int):
        super().__init__(413, f"body exceeds the limit of {max_bytes} bytes")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                message = f"body is {int(value)} bytes; the limit is {self.max_bytes}"
                response = error_response(413, "payload_too_large", message, [
                    {"field": "(body)", "message": message, "type": "too_large"}])
                await response(scope, receive, send)
                return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # an HTTPException passes FastAPI's body parsing untouched and reaches
                    # the app's handler, which answers 413
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted_receive, send)


def install_body_limit(app: FastAPI, max_bytes: int) -> None:
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_bytes)
