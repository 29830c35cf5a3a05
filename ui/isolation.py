"""Cross-origin isolation of the page (opt-in): the two response headers under which a browser
lets the SAM decoder run several wasm threads (threads share memory, which a browser allows only in
a cross-origin isolated page).

- `Cross-Origin-Opener-Policy: same-origin`: no window of another site shares this page's process;
- `Cross-Origin-Embedder-Policy: credentialless`: resources from other sites (onnxruntime-web from
  its CDN, fonts) still load, without cookies, instead of needing headers of their own as under
  `require-corp`.

A page inside another site's frame (a Space shown on huggingface.co) is isolated only if that site
is too: open the app at its own address. Browsers without `credentialless` stay on one thread.
"""

HEADERS = ((b"cross-origin-opener-policy", b"same-origin"), (b"cross-origin-embedder-policy", b"credentialless"))


class CrossOriginIsolation:
    """ASGI middleware: adds HEADERS to every HTTP response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_isolated(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *HEADERS]}
            await send(message)
        return await self.app(scope, receive, send_isolated)
