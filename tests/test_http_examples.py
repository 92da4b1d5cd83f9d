"""The HTTP examples work: the JSON API (through gofer's client) and hello world."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import gofer
from gofer import http as ghttp
from gofer.http.testing import ServerThread

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_json_api_example() -> None:
    api = load("json_api")
    with ServerThread(api.api) as srv:
        def main() -> None:
            with ghttp.Client() as c:
                r = c.post(srv.url + "/todos", json={"title": "write docs"})
                assert r.status == 201 and r.json()["title"] == "write docs"
                todo_id = r.json()["id"]
                assert c.get(srv.url + "/todos").json() == [{"id": todo_id, "title": "write docs", "done": False}]
                assert c.post(srv.url + "/todos", body=b"not json").status == 400
                assert c.get(srv.url + f"/todos/{todo_id}").status == 200
                assert c.delete(srv.url + f"/todos/{todo_id}").status == 204
                assert c.get(srv.url + f"/todos/{todo_id}").status == 404
                assert c.put(srv.url + "/todos").status == 405
                assert c.get(srv.url + "/nowhere").status == 404

        gofer.run(main)


def test_hello_example() -> None:
    hello = load("hello")
    with ServerThread(hello.hello) as srv:
        def main() -> ghttp.ClientResponse:
            try:
                return ghttp.get(srv.url + "/")
            finally:
                ghttp.client.close_default()

        r = gofer.run(main)
        assert r.status == 200 and r.body == b"Hello, World!"
        assert r.headers["content-type"] == "text/plain"
