"""A small JSON API on gofer's native handler interface: an in-memory todo list.

    python examples/json_api.py
    curl -s localhost:8000/todos -d '{"title": "write docs"}'
    curl -s localhost:8000/todos
    curl -s localhost:8000/todos/1 -X DELETE

Handlers are plain functions; each connection runs in its own coroutine, so
a handler may block (here: ``gofer.sleep`` in ``/slow``) without holding up
the others.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import gofer
from gofer import http

todos: dict[int, dict[str, Any]] = {}
ids = itertools.count(1)


def api(req: http.Request) -> http.Response:
    parts = [p for p in req.path.split("/") if p]
    if parts == ["todos"]:
        if req.method == "GET":
            return http.Response.json(list(todos.values()))
        if req.method == "POST":
            try:
                data = req.json()
                title = str(data["title"])
            except (ValueError, KeyError, TypeError):
                raise http.HTTPError(400, 'send a JSON object like {"title": "..."}') from None
            todo = {"id": next(ids), "title": title, "done": bool(data.get("done", False))}
            todos[todo["id"]] = todo
            return http.Response.json(todo, status=201)
        raise http.HTTPError(405)
    if len(parts) == 2 and parts[0] == "todos" and parts[1].isdigit():
        todo = todos.get(int(parts[1]))
        if todo is None:
            raise http.HTTPError(404, "no such todo")
        if req.method == "GET":
            return http.Response.json(todo)
        if req.method == "DELETE":
            del todos[todo["id"]]
            return http.Response(status=204)
        raise http.HTTPError(405)
    if parts == ["slow"]:
        gofer.sleep(1.0)  # parks this connection's coroutine only
        return http.Response.json({"slept": 1.0})
    return http.Response(json.dumps({"error": "not found"}), status=404, content_type="application/json")


if __name__ == "__main__":
    print("serving on http://127.0.0.1:8000")
    gofer.run(http.serve, api, ("127.0.0.1", 8000))
