"""Tracking URIs: the environment overrides params.yaml, and records never hold a password."""

from __future__ import annotations

import pytest

from medmtl import tracking
from medmtl.credentials import redact


@pytest.mark.parametrize(
    ("text", "recorded"),
    [
        ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
        ("postgresql://alice:s3cret@db:5432/mlflow", "postgresql://alice@db:5432/mlflow"),
        ("https://ghp_token123@host/x", "https://host/x"),  # a lone user-info part may be a token
        ("http://host:5000", "http://host:5000"),
        ("failed: http://a:p%40ss@h:5/api and ftp://x:y@z/", "failed: http://a@h:5/api and ftp://x@z/"),
    ],
)  # fmt: skip
def test_redact_removes_passwords_and_tokens_from_uris_and_messages(text, recorded):
    assert redact(text) == recorded


def test_the_environment_overrides_the_configured_store(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.store_uri("sqlite:///mlflow.db") == "sqlite:///mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.store_uri("sqlite:///mlflow.db") == "http://127.0.0.1:5000"


def test_params_need_a_tracking_uri():
    from pathlib import Path

    import yaml

    from medmtl.errors import UserError
    from medmtl.pipeline.params import validate_params

    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    validate_params(params)
    for bad in ({"uri": "mlflow.db"}, {}, "sqlite:///mlflow.db"):
        with pytest.raises(UserError, match="tracking.uri: .* must be an MLflow tracking URI"):
            validate_params({**params, "tracking": bad})
    secret = {"uri": "postgresql://alice:s3cret@db/mlflow"}
    with pytest.raises(UserError, match="'postgresql://alice@db/mlflow' holds a password") as err:
        validate_params({**params, "tracking": secret})
    assert "s3cret" not in str(err.value)
    with pytest.raises(UserError, match="a shell would read"):
        validate_params({**params, "tracking": {"uri": "postgresql://h/db?a=1&b=2"}})


def test_an_unreachable_server_is_a_clear_error_naming_it_without_the_password(monkeypatch):
    import socket

    from medmtl.errors import UserError

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(UserError) as raised:
        tracking.init_store(f"http://admin:s3cret@127.0.0.1:{port}", "medmtl")
    message = str(raised.value)
    assert message.startswith(f"the MLflow tracking server http://admin@127.0.0.1:{port} is ")
    assert "Connection refused" in message and "s3cret" not in message
