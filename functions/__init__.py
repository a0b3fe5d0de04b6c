"""Lambda handlers: parse the event, call the core, report the failed records."""
