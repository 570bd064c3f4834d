"""A real S3-compatible server (moto in server mode) on 127.0.0.1, one per test module."""

import pytest

from cropassets.core.objstore import S3Options


@pytest.fixture(scope="module")
def s3_server():
    """``(endpoint, options)`` of a running moto server with the bucket ``cropassets-test``."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                 aws_secret_access_key="test", region_name="us-east-1").create_bucket(
        Bucket="cropassets-test")
    options = S3Options(endpoint=endpoint, access_key_id="test", secret_access_key="test",
                        allow_http=True, max_retries=2, retry_timeout_s=5.0)
    yield endpoint, options
    server.stop()
