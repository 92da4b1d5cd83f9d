"""Hello world with gofer's native HTTP handler interface.

Run it with ``python examples/hello.py`` (one process) or with
``gofer serve examples.hello:hello --workers 4`` (from the repository root).
"""

import gofer
from gofer import http


def hello(req: http.Request) -> http.Response:
    return http.Response(b"Hello, World!", content_type="text/plain")


if __name__ == "__main__":
    print("serving on http://127.0.0.1:8000")
    gofer.run(http.serve, hello, ("127.0.0.1", 8000))
