"""The same small application in Flask, Bottle, Falcon and Django, for test_http_frameworks.

Each has: ``GET``/``HEAD /hello``, a form ``POST /form``, a JSON ``POST
/json`` (with Content-Length or chunked), a 404 and a 405 (``DELETE
/hello``). A framework that is not installed leaves its attribute ``None``.
"""

from __future__ import annotations

import json
from typing import Any

HELLO = "hello, frameworks\n"


def _echo(form: dict[str, Any]) -> str:
    return json.dumps(form, sort_keys=True)


# -- Flask -----------------------------------------------------------------------
flask_app: Any = None
try:
    import flask
except ImportError:
    pass
else:
    flask_app = flask.Flask("gofer_test")

    @flask_app.get("/hello")
    def _f_hello() -> Any:
        return flask.Response(HELLO, mimetype="text/plain")

    @flask_app.post("/form")
    def _f_form() -> Any:
        return flask.Response(_echo(flask.request.form.to_dict()), mimetype="application/json")

    @flask_app.post("/json")
    def _f_json() -> Any:
        return flask.jsonify(got=flask.request.get_json())


# -- Bottle ------------------------------------------------------------------------
bottle_app: Any = None
try:
    import bottle
except ImportError:
    pass
else:
    bottle_app = bottle.Bottle()

    @bottle_app.get("/hello")
    def _b_hello() -> str:
        bottle.response.content_type = "text/plain"
        return HELLO

    @bottle_app.post("/form")
    def _b_form() -> str:
        bottle.response.content_type = "application/json"
        return _echo(dict(bottle.request.forms.decode()))

    @bottle_app.post("/json")
    def _b_json() -> dict[str, Any]:
        body = bottle.request.body.read()  # bottle reads chunked bodies itself
        return {"got": json.loads(body)}


# -- Falcon -------------------------------------------------------------------------
falcon_app: Any = None
try:
    import falcon
except ImportError:
    pass
else:

    class _Hello:
        def on_get(self, req: Any, resp: Any) -> None:
            resp.content_type = "text/plain"
            resp.text = HELLO

        on_head = on_get

    class _Form:
        def on_post(self, req: Any, resp: Any) -> None:
            form = req.get_media()  # urlencoded, by Falcon's media handlers
            resp.content_type = "application/json"
            resp.text = _echo(dict(form))

    class _Json:
        def on_post(self, req: Any, resp: Any) -> None:
            resp.media = {"got": req.get_media()}

    falcon_app = falcon.App()
    falcon_app.add_route("/hello", _Hello())
    falcon_app.add_route("/form", _Form())
    falcon_app.add_route("/json", _Json())


# -- Django -------------------------------------------------------------------------
django_app: Any = None
try:
    import django
    from django.conf import settings
except ImportError:
    pass
else:
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=__name__,
            SECRET_KEY="gofer-tests-only",
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
            USE_TZ=True,
        )
    django.setup()
    from django.core.wsgi import get_wsgi_application
    from django.http import HttpResponse, JsonResponse
    from django.urls import path
    from django.views.decorators.http import require_http_methods

    @require_http_methods(["GET", "HEAD"])
    def _d_hello(request: Any) -> Any:
        return HttpResponse(HELLO, content_type="text/plain")

    @require_http_methods(["POST"])
    def _d_form(request: Any) -> Any:
        return HttpResponse(_echo(request.POST.dict()), content_type="application/json")

    @require_http_methods(["POST"])
    def _d_json(request: Any) -> Any:
        return JsonResponse({"got": json.loads(request.body)})

    urlpatterns = [path("hello", _d_hello), path("form", _d_form), path("json", _d_json)]
    django_app = get_wsgi_application()
