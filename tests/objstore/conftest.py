"""An S3-compatible server for the object-store tests: moto in server mode on 127.0.0.1.

One server per test session (in its own process, on a free port picked by the OS, stopped
at the end); each test
gets its own bucket prefix and the AWS variables of that server, set for the test only.
tests/objstore has no ``__init__.py``, like tests/tiler.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

BUCKET = "cropassets-test"
KEY_ID, SECRET = "testing-key", "testing-secret"


@dataclass(frozen=True)
class S3Server:
    """A running moto server and the bucket the tests write into."""

    endpoint: str
    bucket: str

    def env(self, **extra: str) -> dict[str, str]:
        """The AWS variables reaching this server (and ``extra``)."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": KEY_ID,
                "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1", **extra}

    def client(self):  # noqa: ANN201 - boto3 client, the test's independent view of the bucket
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=KEY_ID,
                            aws_secret_access_key=SECRET, region_name="us-east-1")

    def keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (seen through boto3, not the code under test)."""
        out: list[str] = []
        pages = self.client().get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            out += [o["Key"] for o in page.get("Contents", [])]
        return out


@contextmanager
def moto_process(bucket: str, auth: bool = False) -> Iterator[dict]:
    """``moto_process.py`` in a subprocess: yields its JSON line; killed on exit."""
    cmd = [sys.executable, str(Path(__file__).with_name("moto_process.py")), bucket]
    proc = subprocess.Popen(cmd + (["--auth"] if auth else []), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"moto server did not start (exit {proc.wait(5)})")
        yield json.loads(line)
    finally:
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's ThreadedMotoServer on 127.0.0.1, a free port, in its own process (see
    moto_process.py); stopped after the session."""
    with moto_process(BUCKET) as info:
        yield S3Server(str(info["endpoint"]), BUCKET)


@pytest.fixture
def s3_root(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """``s3://bucket/<fresh prefix>``, with the server's AWS variables set for this test."""
    for name, value in s3_server.env(CROPASSETS_S3_RETRIES="2",
                                     CROPASSETS_S3_RETRY_TIMEOUT="5").items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return f"s3://{s3_server.bucket}/t-{uuid.uuid4().hex[:10]}"


def options():  # noqa: ANN201
    """The object-store options of the current environment (as every entry point reads them)."""
    from cropassets.settings import load_settings

    return load_settings(dict(os.environ)).object_store
