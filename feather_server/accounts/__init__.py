"""Accounts: API keys, plans, quotas and credits, in a SQL database.

``init_app`` adds the hooks that authenticate and charge the Feather-dialect
endpoints (``compress.compress``, ``compress.convert``) without those views knowing:
one credit is reserved before the work and given back when the answer is an error,
so a failed image is never charged and two workers never both spend the last credit.
"""

from __future__ import annotations

from flask import Flask, Response, g, request

from feather_server.accounts.auth import Caller, authenticate, charge, refund
from feather_server.http import dialect
from feather_server.http.request import spool_every_file
from feather_server.settings import Settings

__all__ = ["Caller", "authenticate", "charge", "refund", "init_app", "BATCH_ENDPOINTS"]

# Endpoints charged one compression per successful answer by the hooks below.
FEATHER_ENDPOINTS = ("compress.compress", "compress.convert")
# Endpoints that may receive a FluxImage batch (20 files of 20 MB).
BATCH_ENDPOINTS = ("batch.batch", "compress.compress")
MAX_BATCH_FILES = 20


def batch_request_limit(settings: Settings) -> int:
    # Every file at its limit, a watermark, and room for the fields and multipart framing.
    return (MAX_BATCH_FILES + 1) * settings.max_upload_bytes + 2_000_000


def init_app(app: Flask) -> None:
    settings: Settings = app.config["FEATHER"]

    @app.before_request
    def _guard() -> None:
        endpoint = request.endpoint
        if endpoint in BATCH_ENDPOINTS:
            # Must be set before anything reads the form.
            request.max_content_length = batch_request_limit(settings)
        if endpoint == "batch.batch":
            spool_every_file()
        if endpoint not in FEATHER_ENDPOINTS:
            return
        if endpoint == "compress.compress" and dialect.is_flux_request(request):
            return  # the batch view authenticates and charges per image itself
        g.dialect = "feather"
        caller = authenticate()
        g.watermark_allowed = caller.may_watermark
        g.feather_reservation = charge(caller, compressions=1)

    @app.after_request
    def _settle(response: Response) -> Response:
        reservation = g.pop("feather_reservation", None)
        if reservation is not None and response.status_code >= 400:
            refund(reservation, compressions=1)
        return response

    @app.teardown_request
    def _settle_on_crash(_exc: BaseException | None) -> None:
        # after_request does not run when the response itself failed to build.
        reservation = g.pop("feather_reservation", None)
        if reservation is not None:
            refund(reservation, compressions=1)
