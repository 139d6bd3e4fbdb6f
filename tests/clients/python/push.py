"""Pushes log records to lokal with a real PyPI Loki handler, for tests/clients.rs.

usage: python push.py <client> <base-url> <tenant> <run> <count>

clients:
  logging-loki-v1       python-logging-loki, version="1", to /loki/api/v1/push
  logging-loki-legacy   python-logging-loki, version="0", to /api/prom/push
  logging-loki-default  python-logging-loki, default version (the legacy v0
                        body), to /loki/api/v1/push, as its README shows
  loki-logger-handler   loki-logger-handler: gzip JSON with extra fields,
                        structured metadata and X-Scope-OrgID

Record i has the message "<client> <run> line <i>". python-logging-loki has
no header option, so its tenant is the server's single-tenant default. The
script prints one JSON summary line and exits 1 if the handler reported any
error (a non-204 answer included: python-logging-loki insists on 204).
"""

import json
import logging
import sys
import warnings

client, base, tenant, run, count = sys.argv[1:6]
count = int(count)
errors = []


def logging_loki(version, path):
    import logging_loki as ll

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        handler = ll.LokiHandler(
            url=base + path,
            tags={"app": "py-app", "run": run},
            version=version,
        )
    # handleError runs inside the handler's `except`: keep the exception.
    handler.handleError = lambda record: errors.append(repr(sys.exc_info()[1]))
    logger = logging.getLogger("lokal.test." + client)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    for i in range(count):
        level = logging.WARNING if i % 2 else logging.INFO
        logger.log(level, "%s %s line %d", client, run, i, extra={"tags": {"color": "c%d" % (i % 2)}})
    return {"deprecation_warnings": sum(1 for w in caught if issubclass(w.category, DeprecationWarning))}


def loki_logger_handler():
    from loki_logger_handler.loki_logger_handler import LokiLoggerHandler

    handler = LokiLoggerHandler(
        url=base + "/loki/api/v1/push",
        labels={"app": "py-app", "run": run},
        additional_headers={"X-Scope-OrgID": tenant},
        timeout=3600,  # flushed by hand below
        enable_structured_loki_metadata=True,
        loki_metadata={"source": "loki-logger-handler"},
        loki_metadata_keys=["seq"],
    )
    logger = logging.getLogger("lokal.test." + client)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    for i in range(count):
        logger.info("%s %s line %d", client, run, i, extra={"seq": i})
    handler._send()  # what its atexit hook does
    if handler.error:
        errors.append("loki-logger-handler reported an error while sending")
    return {}


runners = {
    "logging-loki-v1": lambda: logging_loki("1", "/loki/api/v1/push"),
    "logging-loki-legacy": lambda: logging_loki("0", "/api/prom/push"),
    "logging-loki-default": lambda: logging_loki(None, "/loki/api/v1/push"),
    "loki-logger-handler": loki_logger_handler,
}
summary = runners[client]()
print(json.dumps({"client": client, "errors": errors, **summary}))
sys.exit(1 if errors else 0)
