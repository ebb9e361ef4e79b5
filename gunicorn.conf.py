"""gunicorn settings, read by `gunicorn -c gunicorn.conf.py wsgi:app`. Plain assignments."""

import multiprocessing
import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '3000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "sync"
# Longer than REQUEST_TIMEOUT_MS, so the app answers 504 itself before gunicorn kills it.
timeout = int(os.environ.get("REQUEST_TIMEOUT_MS", "30000")) // 1000 + 30
graceful_timeout = 30
max_requests = 1000
max_requests_jitter = 100
accesslog = "-"
errorlog = "-"
