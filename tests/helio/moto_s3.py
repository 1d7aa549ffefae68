"""A real S3-compatible server for helio's store tests: moto in server mode
on a free loopback port, requests signed and checked (SigV4), with a request
log the test reads back.

Prints one JSON line (endpoint, bucket, access key, secret), then serves
until its standard input closes. GET /_helio/requests returns every S3
request so far ([method, path, query]); DELETE clears the log. GET
/_helio/public/BUCKET/KEY serves an object to anyone, as a public bucket or
a CDN in front of it would (not logged: it is not helio's request).
"""

import json
import sys
import threading

import boto3
from moto import settings
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.authorization import ActionAuthenticatorMixin
from moto.s3.models import s3_backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

BUCKET = sys.argv[1] if len(sys.argv) > 1 else "helio-test"
requests = []
guard = threading.Lock()


def public(environ, start_response, path):
    bucket, _, key = path[len("/_helio/public/"):].partition("/")
    try:
        found = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_object(bucket, key)
    except Exception:
        found = None
    if found is None:
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    body = found.value
    headers = [("Content-Type", found.metadata.get("content-type", "application/octet-stream")), ("Content-Length", str(len(body)))]
    if found.metadata.get("cache-control"):
        headers.append(("Cache-Control", found.metadata["cache-control"]))
    start_response("200 OK", headers)
    return [b"" if environ["REQUEST_METHOD"] == "HEAD" else body]


def recording(app):
    def wrapped(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_helio/public/"):
            return public(environ, start_response, path)
        if path == "/_helio/requests":
            with guard:
                if environ["REQUEST_METHOD"] == "DELETE":
                    requests.clear()
                body = json.dumps(requests).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if not path.startswith("/moto-api"):
            with guard:
                requests.append([environ["REQUEST_METHOD"], path, environ.get("QUERY_STRING", "")])
        return app(environ, start_response)

    return wrapped


class QuietHandler(MotoRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


server = make_server(
    "127.0.0.1",
    0,
    recording(DomainDispatcherApplication(create_backend_app)),
    threaded=True,
    request_handler=QuietHandler,
)
threading.Thread(target=server.serve_forever, daemon=True).start()
endpoint = f"http://127.0.0.1:{server.server_port}"

# Set up while moto still accepts anyone: a user allowed everything, its
# key, and the bucket. Then every request must be signed with that key.
setup = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
iam = boto3.client("iam", **setup)
iam.create_user(UserName="helio")
iam.put_user_policy(
    UserName="helio",
    PolicyName="everything",
    PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
)
key = iam.create_access_key(UserName="helio")["AccessKey"]
boto3.client("s3", **setup).create_bucket(Bucket=BUCKET)
# What moto's /moto-api/reset-auth does, done in this process.
settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
ActionAuthenticatorMixin.request_count = 0
with guard:
    requests.clear()

print(json.dumps({"endpoint": endpoint, "bucket": BUCKET, "key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}), flush=True)
sys.stdin.read()
server.shutdown()
