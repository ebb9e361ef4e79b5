"""gunicorn settings, read by `gunicorn -c gunicorn.conf.py wsgi:app`.

Plain assignments from the environment (names in the README's service section). The
app's own settings (REQUEST_TIMEOUT_MS, DATA_DIR, METRICS_ENABLED) are read here only
where gunicorn must agree with them.
"""

import math
import os
import shutil

_env = os.environ.get


def _truthy(name: str) -> bool:
    return _env(name, "").strip().lower() in {"1", "true", "yes", "on"}


# Loopback unless HOST says otherwise: a sync worker serves one request at a time, so
# facing clients directly a few slow ones can hold them all. In production nginx faces
# them (deploy/feather.nginx.conf) and gunicorn listens on 127.0.0.1 behind it.
bind = f"{_env('HOST', '127.0.0.1')}:{_env('PORT', '3000')}"

# Image work is CPU-bound and Pillow releases the GIL only in parts: one sync worker
# per core, each serving one request at a time, is the simplest model that uses them.
workers = int(_env("WEB_CONCURRENCY") or os.cpu_count() or 1)
worker_class = "sync"

# Longer than REQUEST_TIMEOUT_MS and MODEL_FETCH_TIMEOUT_MS, so the app answers 504
# (or 502 for the model) itself well before gunicorn gives up on a worker and kills it.
timeout = int(_env("GUNICORN_TIMEOUT")
              or math.ceil(max(int(_env("REQUEST_TIMEOUT_MS") or 30000),
                               int(_env("MODEL_FETCH_TIMEOUT_MS") or 60000)) / 1000) + 30)
# On TERM or HUP, workers finish the request in hand for up to this long.
graceful_timeout = int(_env("GRACEFUL_TIMEOUT") or 30)
# Recycling workers bounds the memory a long-lived decoder process can keep; the
# jitter keeps all workers from restarting at once.
max_requests = int(_env("MAX_REQUESTS") or 1000)
max_requests_jitter = int(_env("MAX_REQUESTS_JITTER") or 100)
# The heartbeat file on tmpfs, so a slow disk cannot get healthy workers killed.
worker_tmp_dir = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None

# Proxies are trusted in one place, the app (TRUSTED_PROXIES drives ProxyFix), so
# gunicorn itself believes no forwarded header from anyone.
forwarded_allow_ips = ""
# No run-time control socket: it lives in $HOME, which the systemd unit hides, and
# several instances on one host would fight over its one default path.
control_socket_disable = True

loglevel = (_env("LOG_LEVEL") or "info").lower()
errorlog = "-"
accesslog = _env("ACCESS_LOG") or "-"
# Client, request line, status, bytes, duration in ms, worker pid, request id
# (the X-Request-Id the app sent back), user agent.
if (_env("LOG_FORMAT") or "").strip().lower() == "json":
    # One JSON object per line, for log shippers (feather_server/logs.py).
    logger_class = "feather_server.logs.JsonGunicornLogger"
access_log_format = ('%(h)s "%(r)s" %(s)s %(B)s %(M)sms pid=%(p)s '
                     'rid=%({x-request-id}o)s "%(a)s"')

# Prometheus multiprocess mode: each worker writes its samples to files in this
# folder and a scrape sums them. It must be set before any worker imports
# prometheus_client, and emptied at start so a previous run's counts do not linger.
if _truthy("METRICS_ENABLED"):
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR",
                          os.path.join(os.path.abspath(_env("DATA_DIR") or "var"),
                                       "prometheus"))


def on_starting(server):  # type: ignore[no-untyped-def]
    # DATA_DIR checked and repaired once, before any worker: a damaged file that cannot
    # be rebuilt safely stops start-up here with a message naming it (a RuntimeError,
    # which gunicorn prints before exiting 1).
    from feather_server.datadir import check_data_dir
    from feather_server.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise RuntimeError(str(exc)) from exc
    check_data_dir(settings)

    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)
    # Upload spool folders of workers of an earlier run that did not end cleanly.
    from feather_server.http.spool import remove_spools

    remove_spools(_env("DATA_DIR") or "var")


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    # A dead worker's counters stay in the sums; its live gauges must not.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        from feather_server.metrics import metrics

        multiprocess.mark_process_dead(worker.pid)
        metrics().worker_exits.inc()
    # A worker killed mid-request (gunicorn's timeout, kill -9) leaves its spool folder.
    from feather_server.http.spool import remove_spools

    remove_spools(_env("DATA_DIR") or "var", pid=worker.pid)


def worker_abort(worker):  # type: ignore[no-untyped-def]
    # gunicorn's timeout fired: the worker was silent too long (it never should be).
    from feather_server.metrics import metrics

    metrics().worker_timeouts.inc()


def post_fork(server, worker):  # type: ignore[no-untyped-def]
    # A worker receives requests and leaves the image work to job processes: uploads
    # held in memory get mappings of their own, which grow without copies and go back
    # to the kernel after the request (feather_core/allocator.py says why).
    from feather_core.allocator import hand_back_large_buffers

    hand_back_large_buffers()


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    # Start this worker's job processes before it takes a request: their fork server
    # imports the codecs once, which takes a moment, and a request's deadline should not
    # pay for it. Meanwhile the other workers serve.
    from feather_server.services import processing
    from feather_server.settings import Settings

    try:
        processing.warm_up(Settings.from_env())
    except Exception as exc:  # noqa: BLE001 - the first job will start them again
        worker.log.warning("job processes did not start: %s", exc)


def worker_exit(server, worker):  # type: ignore[no-untyped-def]
    # A worker that stops (recycled, reloaded, shut down) stops its job processes first.
    from feather_server.services import processing

    processing.shutdown()
