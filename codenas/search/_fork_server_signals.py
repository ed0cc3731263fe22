"""Imported by the ``--workers`` fork server (:mod:`codenas.search.forkserver`): SIGHUP is
ignored by the server and stops each worker forked from it as SIGTERM does
(:func:`codenas.search.hangup.for_fork_server`)."""

from codenas.search.hangup import for_fork_server

for_fork_server()
