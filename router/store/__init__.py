"""Persistent state (peewee over SQLite, WAL): ``db`` opens it, ``migrations`` shapes it, one
repository module per domain (providers, keys, combos, config, calllogs, sessions, hosts,
agents) hands out records.py records, ``writer`` batches writes off the request path."""

from router.store.drivers import import_peewee

import_peewee()  # before any module of this package imports peewee (drivers.py says why)
