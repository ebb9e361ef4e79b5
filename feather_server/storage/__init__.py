"""Stored outputs behind signed, expiring download URLs: a local folder or an S3 bucket.

``store_for(settings)`` picks the backend once per app; views only see the ``Store``
protocol of ``feather_server.storage.base``.
"""

from __future__ import annotations

from flask import Flask, current_app

from feather_server.settings import Settings, current_settings
from feather_server.storage.base import Store, StoredObject, StoreError
from feather_server.storage.signing import SecretError, Signer, load_secret

__all__ = ["Store", "StoredObject", "StoreError", "Signer", "store_for", "init_app",
           "current_store", "current_signer"]


def store_for(settings: Settings) -> Store:
    """The configured store: S3 when ``S3_BUCKET`` is set, else DATA_DIR/outputs."""
    if settings.s3_bucket:
        from feather_server.storage.s3 import S3Store

        return S3Store.from_settings(settings)
    from feather_server.storage.local import LocalStore

    return LocalStore.from_settings(settings)


def init_app(app: Flask) -> None:
    # Built lazily: most requests never store anything, and creating the S3 client or
    # the secret file at start-up would slow every worker (and every test app) down.
    app.extensions["feather.storage"] = None
    app.extensions["feather.signer"] = None


def current_store() -> Store:
    store: Store | None = current_app.extensions.get("feather.storage")
    if store is None:
        store = store_for(current_settings())
        current_app.extensions["feather.storage"] = store
    return store


def current_signer() -> Signer:
    signer: Signer | None = current_app.extensions.get("feather.signer")
    if signer is None:
        try:
            signer = Signer(load_secret(current_settings()))
        except SecretError as exc:  # a full or read-only DATA_DIR: 503, and say why
            raise StoreError(str(exc)) from exc
        current_app.extensions["feather.signer"] = signer
    return signer
