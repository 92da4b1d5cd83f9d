"""A Flask application, unchanged, served by gofer (WSGI).

    pip install flask
    gofer serve examples.flask_app:app --workers 2 --bind 127.0.0.1:8000

Each request runs in a gofer coroutine, so code that blocks through gofer
(``gofer.sleep``, ``gofer.http.get``, gofer sockets) lets other requests
proceed in the same worker process.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request

import gofer

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "Hello from Flask on gofer!\n"


@app.post("/echo")
def echo() -> Any:
    return jsonify(json=request.get_json(silent=True), args=request.args, length=request.content_length)


@app.get("/wait")
def wait() -> Any:
    seconds = min(float(request.args.get("s", "0.5")), 5.0)
    gofer.sleep(seconds)  # other requests keep being served meanwhile
    return jsonify(waited=seconds)
