"""Outputs in an S3-compatible bucket, downloaded through S3 presigned URLs.

Object keys are ``<S3_PREFIX><scope>/<expires>-<id>`` (default prefix
``feather/outputs/``): the expiry is in the key, so sweeping needs only a listing.
Feather touches only its own objects: it lists and deletes under the prefix alone,
and a key there that is not exactly of that shape is left alone, so a bucket shared
with backups, a website or another application loses nothing.

Expiry: by default a sweep deletes expired outputs. With ``S3_LIFECYCLE`` the bucket
does it: a lifecycle rule on the prefix is installed (or found), and sweeping stops.
When the bucket refuses (no permission, no lifecycle support) Feather says so in the
log and sweeps instead.

Every call is bounded: ``S3_TIMEOUT_MS`` to connect and per read, ``S3_MAX_ATTEMPTS``
attempts, capped so that a call's attempts fit in half of ``REQUEST_TIMEOUT_MS``; a
bucket that does not answer gives StoreError (503), never a worker killed by gunicorn.

The download name and type travel in the presigned URL (``response-content-disposition``
/``-type``), so S3 serves them itself. ``S3_PUBLIC_URL`` signs links for the address
clients reach the bucket at (a CDN or proxy that passes the Host header on).
"""

from __future__ import annotations

import logging
import math
import re
import time
from typing import Any
from urllib.parse import quote, unquote

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from feather_server.filenames import content_disposition
from feather_server.settings import Settings
from feather_server.storage.base import StoredObject, StoreError, new_object_id

log = logging.getLogger("feather.storage")

LIFECYCLE_RULE_ID = "feather-outputs-expiry"
_DAY = 86_400
# <scope>/<expires>-<id>: a scope is an HMAC digest (32 hex) or a plain name, the
# expiry Unix seconds, the id 32 hex digits (new_object_id).
# Lifecycle rules as boto3 gives them (an alias: S3Store.list shadows the builtin).
Rules = list[dict[str, Any]]
_KEY = re.compile(r"(?P<scope>[0-9A-Za-z]{1,64})/(?P<expires>[0-9]{1,12})-(?P<id>[0-9a-f]{32})")


def _client_config(settings: Settings) -> Config:
    attempts = settings.s3_max_attempts
    # All attempts of one call within half the request's time, so the request still
    # answers 503 itself. An attempt on a silent server waits to connect, up to 1 s
    # for "100 Continue" (botocore's fixed wait before sending a body), then to read;
    # a retry adds up to 1 s of back-off.
    per_attempt = settings.request_timeout / 2 / attempts
    timeout = min(settings.s3_timeout_ms / 1000, max(0.2, (per_attempt - 2) / 2))
    return Config(
        signature_version="s3v4",
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"mode": "standard", "total_max_attempts": attempts},
        s3={"addressing_style": "path"} if settings.s3_endpoint_url else {},
    )


class S3Store:
    """The outputs under one prefix of a bucket."""

    def __init__(self, client: Any, bucket: str, prefix: str = "", *,
                 signing_client: Any | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.signing_client = signing_client or client
        #: True once the bucket's lifecycle rule expires the prefix: no sweeping then.
        self.lifecycle_expiry = False

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Store:
        def client(endpoint: str) -> Any:
            return boto3.client(
                "s3",
                endpoint_url=endpoint or None,
                region_name=settings.s3_region,
                aws_access_key_id=settings.s3_access_key_id or None,
                aws_secret_access_key=settings.s3_secret_access_key or None,
                config=_client_config(settings),
            )

        main = client(settings.s3_endpoint_url)
        signing = client(settings.s3_public_url) if settings.s3_public_url else None
        store = cls(main, settings.s3_bucket, settings.s3_prefix, signing_client=signing)
        if settings.s3_lifecycle:
            store.use_lifecycle(settings.download_ttl_seconds)
        return store

    # Keys.

    def _key(self, obj: StoredObject) -> str:
        return f"{self.prefix}{obj.scope}/{obj.expires}-{obj.object_id}"

    def _parse_key(self, key: str) -> tuple[str, int, str] | None:
        """(scope, expires, id) of a key Feather wrote; None for any other key."""
        if not key.startswith(self.prefix):
            return None
        found = _KEY.fullmatch(key[len(self.prefix):])
        if found is None:
            return None
        return found["scope"], int(found["expires"]), found["id"]

    # The Store protocol.

    def put(self, scope: str, data: bytes, name: str, mime: str, expires: int) -> StoredObject:
        obj = StoredObject(scope=scope, object_id=new_object_id(), name=name, mime=mime,
                           size=len(data), expires=expires)
        try:
            # A PUT is atomic in S3: the object appears whole or not at all.
            self.client.put_object(Bucket=self.bucket, Key=self._key(obj), Body=data,
                                   ContentType=mime, Metadata={"name": quote(name)})
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"could not store the output: {exc}") from exc
        return obj

    def _listing(self, below: str = "") -> list[dict[str, Any]]:
        """Every object under the prefix (and ``below`` it); never outside the prefix."""
        items: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + below):
                items.extend(page.get("Contents", []))
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"could not list the bucket: {exc}") from exc
        return items

    def _head(self, key: str) -> StoredObject | None:
        parsed = self._parse_key(key)
        if parsed is None:
            return None
        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StoreError(f"could not read the output: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"could not read the output: {exc}") from exc
        scope, expires, object_id = parsed
        return StoredObject(scope=scope, object_id=object_id,
                            name=unquote(answer.get("Metadata", {}).get("name", object_id)),
                            mime=answer.get("ContentType", "application/octet-stream"),
                            size=int(answer.get("ContentLength", 0)), expires=expires)

    def read(self, obj: StoredObject) -> bytes | None:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(obj))
            data: bytes = answer["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"could not read the output: {exc}") from exc
        return data

    def get(self, scope: str, object_id: str) -> tuple[StoredObject, bytes] | None:
        for item in self._listing(scope + "/"):
            parsed = self._parse_key(item["Key"])
            if parsed and parsed[0] == scope and parsed[2] == object_id:
                obj = self._head(item["Key"])
                data = self.read(obj) if obj else None
                return (obj, data) if obj and data is not None else None
        return None

    def list(self, scope: str) -> list[StoredObject]:
        items = sorted(self._listing(scope + "/"), key=lambda item: item["LastModified"])
        found = (self._head(item["Key"]) for item in items)
        return [obj for obj in found if obj is not None and obj.scope == scope]

    def download_url(self, obj: StoredObject, feather_url: str) -> str:
        url: str = self.signing_client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._key(obj),
                    "ResponseContentType": obj.mime,
                    "ResponseContentDisposition": content_disposition(obj.name)},
            ExpiresIn=max(1, obj.expires - int(time.time())),
        )
        return url

    def sweep(self, now: float | None = None) -> int:
        """Delete Feather's expired outputs under the prefix; nothing else, ever."""
        if self.lifecycle_expiry:
            return 0
        now = time.time() if now is None else now
        expired = [item["Key"] for item in self._listing()
                   if (parsed := self._parse_key(item["Key"])) is not None
                   and parsed[1] < now]
        deleted = 0
        for start in range(0, len(expired), 1000):
            chunk = expired[start:start + 1000]
            try:
                answer = self.client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": key} for key in chunk], "Quiet": True})
            except (BotoCoreError, ClientError) as exc:
                raise StoreError(f"could not sweep the bucket: {exc}") from exc
            # A multi-delete answers 200 and lists the keys it could not delete.
            refused = answer.get("Errors", [])
            deleted += len(chunk) - len(refused)
            if refused:
                raise StoreError(f"could not sweep the bucket: {len(refused)} key(s) refused, "
                                 f"e.g. {refused[0].get('Code')}: {refused[0].get('Message')}")
        return deleted

    def describe(self) -> str:
        return "s3"

    def check(self) -> None:
        """The bucket answers and lets Feather list its prefix."""
        try:
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"the bucket does not answer: {exc}") from exc

    # Lifecycle expiry.

    def lifecycle_rule(self, ttl_seconds: int) -> dict[str, Any]:
        """The rule that expires Feather's outputs: whole days, at least one, past the TTL."""
        return {"ID": LIFECYCLE_RULE_ID, "Status": "Enabled",
                "Filter": {"Prefix": self.prefix},
                "Expiration": {"Days": max(1, math.ceil(ttl_seconds / _DAY))}}

    def use_lifecycle(self, ttl_seconds: int) -> bool:
        """Find or install the bucket's rule; sweeping stops when there is one.

        Other rules of the bucket are kept. Returns whether the bucket expires the
        outputs now; on refusal logs why and leaves sweeping on.
        """
        wanted = self.lifecycle_rule(ttl_seconds)
        try:
            rules = self._lifecycle_rules()
            if not any(self._expires_prefix(rule, wanted) for rule in rules):
                others = [rule for rule in rules if rule.get("ID") != LIFECYCLE_RULE_ID]
                self.client.put_bucket_lifecycle_configuration(
                    Bucket=self.bucket, LifecycleConfiguration={"Rules": [*others, wanted]})
                rules = self._lifecycle_rules()
                if not any(self._expires_prefix(rule, wanted) for rule in rules):
                    raise StoreError("the bucket accepted the rule but does not list it")
                log.info("S3 lifecycle rule %s installed: outputs under %r expire after "
                         "%d day(s)", LIFECYCLE_RULE_ID, self.prefix,
                         wanted["Expiration"]["Days"])
        except (BotoCoreError, ClientError, StoreError) as exc:
            log.warning("S3_LIFECYCLE: the bucket's lifecycle rule could not be found or "
                        "installed (%s); expired outputs are swept instead", exc)
            self.lifecycle_expiry = False
            return False
        self.lifecycle_expiry = True
        return True

    def _lifecycle_rules(self) -> Rules:
        try:
            answer = self.client.get_bucket_lifecycle_configuration(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
                return []
            raise
        rules: Rules = answer.get("Rules", [])
        return rules

    @staticmethod
    def _expires_prefix(rule: dict[str, Any], wanted: dict[str, Any]) -> bool:
        """Whether ``rule`` (ours or the operator's) expires the whole prefix soon enough."""
        if rule.get("Status") != "Enabled":
            return False
        rule_filter = rule.get("Filter", {})
        # An empty filter covers the whole bucket; old-style rules have a bare Prefix.
        prefix = rule_filter.get("Prefix", rule.get("Prefix", None if rule_filter else ""))
        if prefix is None or not wanted["Filter"]["Prefix"].startswith(prefix):
            return False
        if set(rule_filter) - {"Prefix"}:
            return False  # tags or sizes: it does not cover every output
        days = rule.get("Expiration", {}).get("Days")
        return isinstance(days, int) and days <= wanted["Expiration"]["Days"] + 1
