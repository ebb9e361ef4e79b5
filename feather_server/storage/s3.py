"""Outputs in an S3-compatible bucket, downloaded through S3 presigned URLs.

Object keys are ``<scope>/<expires>-<id>``: the expiry is in the key, so sweeping
needs only a listing. The download name and type travel in the presigned URL
(``response-content-disposition``/``-type``), so S3 serves them itself.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote, unquote

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from feather_server.filenames import content_disposition
from feather_server.settings import Settings
from feather_server.storage.base import StoredObject, StoreError, new_object_id


class S3Store:
    """A bucket of stored outputs."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Store:
        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=settings.s3_secret_access_key or None,
            config=Config(signature_version="s3v4", retries={"max_attempts": 3},
                          s3={"addressing_style": "path"} if settings.s3_endpoint_url else {}),
        )
        return cls(client, settings.s3_bucket)

    def _key(self, obj: StoredObject) -> str:
        return f"{obj.scope}/{obj.expires}-{obj.object_id}"

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

    def _listing(self, prefix: str = "") -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                items.extend(page.get("Contents", []))
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"could not list the bucket: {exc}") from exc
        return items

    @staticmethod
    def _parse_key(key: str) -> tuple[str, int, str] | None:
        scope, _, rest = key.partition("/")
        expires, _, object_id = rest.partition("-")
        if not expires.isdigit() or not object_id:
            return None
        return scope, int(expires), object_id

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
            if parsed and parsed[2] == object_id:
                obj = self._head(item["Key"])
                data = self.read(obj) if obj else None
                return (obj, data) if obj and data is not None else None
        return None

    def list(self, scope: str) -> list[StoredObject]:
        items = sorted(self._listing(scope + "/"), key=lambda item: item["LastModified"])
        found = (self._head(item["Key"]) for item in items)
        return [obj for obj in found if obj is not None]

    def download_url(self, obj: StoredObject, feather_url: str) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._key(obj),
                    "ResponseContentType": obj.mime,
                    "ResponseContentDisposition": content_disposition(obj.name)},
            ExpiresIn=max(1, obj.expires - int(time.time())),
        )
        return url

    def sweep(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        expired = [item["Key"] for item in self._listing()
                   if (parsed := self._parse_key(item["Key"])) is None or parsed[1] < now]
        deleted = 0
        for start in range(0, len(expired), 1000):
            chunk = expired[start:start + 1000]
            try:
                self.client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": key} for key in chunk], "Quiet": True})
            except (BotoCoreError, ClientError) as exc:
                raise StoreError(f"could not sweep the bucket: {exc}") from exc
            deleted += len(chunk)
        return deleted
