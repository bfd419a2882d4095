#!/usr/bin/env python3
"""docs/openapi.yaml against the running binaries, with schemathesis.

Starts `edge-gateway` and `functions-local` (debug builds, in-memory event
log, secrets of this run) on free loopback ports, then lets schemathesis
send each route the spec's examples, generated valid requests and generated
invalid ones. Every response must be a status the spec lists for the route,
in the documented content type and schema, never a 5xx; a request the spec
calls invalid must get a 4xx. docs/reliability.md, "HTTP contract".

Usage: tests/contract/run.py [--max-examples N]   (scripts/test runs it)
Needs: schemathesis (pinned in .ci/run), the binaries built
(`cargo build -p edge-gateway -p functions --bins`).
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs" / "openapi.yaml"
GATEWAY_PATHS = r"^/(api/|metrics$)"
FUNCTION_PATHS = r"^/(healthz$|webhooks/|queue/|ingest/|internal/)"
# Every check that judges one response on its own, with hooks.py's
# no_unexpected_server_error for not_a_server_error (the no-broker mode's
# documented 503). Left out: ignored_auth (hooks.py signs every request that
# has the signature header, so the check's altered value is signed again),
# positive_data_acceptance (a well-formed event for an unknown account is
# rightly refused, 422) and the stateful ones (the spec has no links).
CHECKS = ",".join(
    [
        "no_unexpected_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "missing_required_header",
        "unsupported_method",
    ]
)
READY_SECS = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_jwt(secret: str, claims: dict) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    mac = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(mac)}"


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"


def wait_ready(process: subprocess.Popen, url: str) -> None:
    """Polls `url` until it answers 200; fails if the process exits first."""
    deadline = time.monotonic() + READY_SECS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"contract: {process.args[0]} exited with {process.returncode} before it answered {url}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"contract: {url} did not answer 200 within {READY_SECS} s")


def spawn(binary: str, env: dict, log: Path) -> subprocess.Popen:
    path = target_dir() / binary
    if not path.exists():
        sys.exit(f"contract: {path} missing (cargo build -p edge-gateway -p functions --bins)")
    clean = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    return subprocess.Popen([str(path)], env={**clean, **env}, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def schemathesis(url: str, paths: str, extra: list, env: dict, max_examples: int) -> int:
    command = [
        "schemathesis", "run", str(SPEC),
        "--url", url,
        "--include-path-regex", paths,
        "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(max_examples),
        "--seed", "20261202",
        "--generation-database", "none",
        "--no-color",
        *extra,
    ]  # fmt: skip
    print("contract:", " ".join(command), flush=True)
    return subprocess.run(command, env={**os.environ, **env}).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=100, help="generated requests per route and phase")
    args = parser.parse_args()

    jwt_secret = secrets.token_hex(32)
    webhook_secret = secrets.token_hex(32)
    ingest_secret = secrets.token_hex(32)
    gateway_port, functions_port = free_port(), free_port()
    logs = Path(os.environ.get("CONTRACT_LOGS", "/tmp"))
    gateway = spawn(
        "edge-gateway",
        {"GATEWAY_ADDR": f"127.0.0.1:{gateway_port}", "JWT_SECRET": jwt_secret, "RUST_LOG": "warn"},
        logs / "contract-gateway.log",
    )
    functions = spawn(
        "functions-local",
        {
            "FUNCTIONS_ADDR": f"127.0.0.1:{functions_port}",
            "WEBHOOK_SECRET": webhook_secret,
            "INGEST_SECRET": ingest_secret,
            "FUNCTIONS_LOG": "warn",
        },
        logs / "contract-functions.log",
    )
    try:
        gateway_url, functions_url = f"http://127.0.0.1:{gateway_port}", f"http://127.0.0.1:{functions_port}"
        wait_ready(gateway, f"{gateway_url}/api/health")
        wait_ready(functions, f"{functions_url}/healthz")
        # An admin's token: /api/admin/websocket-stats answers it, and
        # /api/portfolio reads its user's (empty) portfolio.
        token = hs256_jwt(jwt_secret, {"sub": "contract-user", "admin": True, "exp": int(time.time()) + 3600})
        hooks = {
            "SCHEMATHESIS_HOOKS": "hooks",
            "PYTHONPATH": str(Path(__file__).parent),
            "CONTRACT_WEBHOOK_SECRET": webhook_secret,
            "CONTRACT_INGEST_SECRET": ingest_secret,
        }
        bearer = ["-H", f"Authorization: Bearer {token}"]
        failed = schemathesis(gateway_url, GATEWAY_PATHS, bearer, hooks, args.max_examples)
        failed |= schemathesis(functions_url, FUNCTION_PATHS, [], hooks, args.max_examples)
        for process, name in ((gateway, "edge-gateway"), (functions, "functions-local")):
            if process.poll() is not None:
                print(f"contract: {name} died during the run ({process.returncode})", file=sys.stderr)
                failed = 1
        return 1 if failed else 0
    finally:
        for process in (gateway, functions):
            process.terminate()
        for process in (gateway, functions):
            process.wait(timeout=15)


if __name__ == "__main__":
    sys.exit(main())
