"""What a serving process runs beside its HTTP app: the health monitor and alerter, hot
reload of its configuration, the drained database swap and the graceful drain on SIGTERM.

``create_app``'s lifespan starts one ``Runtime`` (``runtime.process``) per worker process.
"""
