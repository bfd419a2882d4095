"""Schemathesis hooks for tests/contract/run.py.

The ingest routes verify an HMAC of the raw body (docs/functions.md,
"Signatures"), which exists only once the request is serialized, so the
signature is added by a `requests` auth object: it sees the prepared request
with its final bytes. A case without the header (schemathesis checking that
a missing signature is refused) goes out unsigned. The secrets come from
the environment run.py sets.
"""

import hashlib
import hmac
import json
import os
import time

import requests
import schemathesis

SIGNATURE = "X-Webhook-Signature"
INGEST_PREFIXES = ("/queue/", "/ingest/", "/internal/")


class SignBody(requests.auth.AuthBase):
    """X-Webhook-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>."""

    def __init__(self, secret: bytes):
        self.secret = secret

    def __call__(self, request):
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        t = str(int(time.time()))
        mac = hmac.new(self.secret, t.encode() + b"." + body, hashlib.sha256).hexdigest()
        request.headers[SIGNATURE] = f"t={t},v1={mac}"
        return request


@schemathesis.hook
def before_call(context, case, kwargs):
    if SIGNATURE not in (case.headers or {}):
        return
    path = case.operation.path
    if path.startswith("/webhooks/"):
        kwargs["auth"] = SignBody(os.environ["CONTRACT_WEBHOOK_SECRET"].encode())
    elif path.startswith(INGEST_PREFIXES):
        kwargs["auth"] = SignBody(os.environ["CONTRACT_INGEST_SECRET"].encode())


# The one 5xx this run may see: the functions run without a broker (no
# Alpaca here), so routes that need it answer 503 broker_not_configured,
# as docs/functions.md says. Any other 5xx fails.
EXPECTED_SERVER_ERRORS = {(503, "broker_not_configured")}


@schemathesis.check
def no_unexpected_server_error(ctx, response, case):
    """Like not_a_server_error, but for the no-broker mode's documented 503."""
    if response.status_code < 500:
        return None
    try:
        code = json.loads(response.content)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = None
    if (response.status_code, code) not in EXPECTED_SERVER_ERRORS:
        raise AssertionError(f"server error {response.status_code} ({code}): {response.content[:300]!r}")
    return None
