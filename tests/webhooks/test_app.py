"""The service skeleton: health, metrics, OpenAPI, error shape, sessions, logs."""
import io
import json
import logging


from ..conftest import auth_headers, create_account, create_subject


def test_healthz_reports_database(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json == {"status": "ok", "database": "ok"}


def test_metrics_count_requests_by_endpoint_and_status(client):
    client.get("/healthz")
    body = client.get("/metrics").get_data(as_text=True)
    assert 'xinma_http_requests_total{endpoint="/healthz",method="GET",status="200"}' in body
    assert "xinma_http_request_duration_seconds_bucket" in body


def test_openapi_document_is_generated_from_the_routes(client):
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.json
    assert doc["openapi"].startswith("3.")
    assert "/api/v1/session" in doc["paths"]
    assert "/api/v1/me/subject" in doc["paths"]
    assert "bearer" in doc["components"]["securitySchemes"]


def test_unknown_route_gives_json_error(client):
    r = client.get("/api/v1/nowhere")
    assert r.status_code == 404
    assert r.json["error"]["code"] == "not_found"
    assert r.json["error"]["message"]


def test_login_and_me(client, db, citizen):
    r = client.post("/api/v1/session", json={"login": "citizen", "password": "correct horse battery"})
    assert r.status_code == 201, r.json
    token = r.json["token"]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json["login"] == "citizen"
    assert me.json["subject"]["colour"] == "blue"
    assert "*" in me.json["subject"]["name"]
    assert client.delete("/api/v1/session", headers={"Authorization": f"Bearer {token}"}).status_code == 204
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_wrong_password_and_unknown_login_look_the_same(client, citizen):
    a = client.post("/api/v1/session", json={"login": "citizen", "password": "nope"})
    b = client.post("/api/v1/session", json={"login": "nobody", "password": "nope"})
    assert a.status_code == b.status_code == 401
    assert a.json == b.json
    assert a.json["error"]["code"] == "bad_credentials"


def test_missing_fields_malformed_json_wrong_type_oversized(client, app):
    r = client.post("/api/v1/session", json={"login": "x"})
    assert r.status_code == 422 and r.json["error"]["code"] == "validation_failed"
    assert "password" in r.json["error"]["fields"]
    r = client.post("/api/v1/session", data="{not json", content_type="application/json")
    assert r.status_code == 400 and r.json["error"]["code"] == "malformed_json"
    r = client.post("/api/v1/session", data="login=x", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 415 and r.json["error"]["code"] == "unsupported_media_type"
    big = json.dumps({"login": "x" * (app.config["MAX_CONTENT_LENGTH"] + 10), "password": "y"})
    r = client.post("/api/v1/session", data=big, content_type="application/json")
    assert r.status_code == 413 and r.json["error"]["code"] == "payload_too_large"


def test_no_token_and_bad_token(client):
    assert client.get("/api/v1/me").json["error"]["code"] == "not_authenticated"
    r = client.get("/api/v1/me", headers={"Authorization": "Bearer forged"})
    assert r.status_code == 401 and r.json["error"]["code"] == "not_authenticated"


def test_demo_endpoints_do_not_exist_outside_demo_mode(client):
    assert client.get("/api/v1/session/demo").status_code == 404
    assert client.post("/api/v1/session/demo", json={"account": "admin"}).status_code == 404


def test_login_is_rate_limited(make_app, citizen):
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="3/minute").test_client()
    codes = [client.post("/api/v1/session", json={"login": "citizen", "password": "x"}).status_code
             for _ in range(5)]
    assert codes == [401, 401, 401, 429, 429]
    r = client.post("/api/v1/session", json={"login": "citizen", "password": "x"})
    assert r.json["error"]["code"] == "rate_limited"


def test_logs_are_json_with_request_id_and_no_identifiers(client, db):
    from webhooks.observability import configure_logging
    stream = io.StringIO()
    handler = configure_logging("INFO", stream)
    try:
        subject = create_subject(db, name="赵六安", identifier="11010519491231002X")
        account = create_account(db, "watcher", subject=subject)
        headers = auth_headers(db, account)
        r = client.get("/api/v1/me/subject", headers={**headers, "X-Request-Id": "req-123"})
        assert r.status_code == 200
        logging.getLogger("xinma.test").info("looked up 11010519491231002X with %s", headers["Authorization"])
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "xinma.access"]
    assert access and access[-1]["request_id"] == "req-123" and access[-1]["status"] == 200
    text = stream.getvalue()
    assert "11010519491231002X" not in text
    assert "赵六安" not in text
    assert headers["Authorization"].split()[1] not in text
