"""Run moto's ThreadedMotoServer on 127.0.0.1 (free port) in its own process.

    python tests/objstore/moto_process.py BUCKET [--auth]

Prints one JSON line (endpoint, and with ``--auth`` the keys of a read-write and a
read-only IAM user) once the server answers, then serves until killed. A separate process,
not a thread of the test process: GDAL keeps the GIL while it opens a file, so a server
thread in the same process could not answer GDAL's requests (a deadlock).

With ``--auth`` the bucket and the users are made first, then moto enforces IAM: requests
need a known key, and the read-only user's writes get 403 AccessDenied.
"""

from __future__ import annotations

import json
import sys
import threading


def main() -> None:
    import boto3
    from moto import settings
    from moto.server import ThreadedMotoServer

    bucket, auth = sys.argv[1], "--auth" in sys.argv[2:]
    settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    kw = {"endpoint_url": endpoint, "region_name": "us-east-1",
          "aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
    boto3.client("s3", **kw).create_bucket(Bucket=bucket)
    out: dict[str, object] = {"endpoint": endpoint}
    if auth:
        iam = boto3.client("iam", **kw)
        for user, actions in (("writer", ["s3:*"]), ("reader", ["s3:GetObject", "s3:ListBucket",
                                                                 "s3:HeadObject"])):
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps({
                "Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Action": actions,
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}))
            key = iam.create_access_key(UserName=user)["AccessKey"]
            out[user] = [key["AccessKeyId"], key["SecretAccessKey"]]
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    print(json.dumps(out), flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
