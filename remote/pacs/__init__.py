"""Sending DICOM objects to the hospital's PACS (pynetdicom): the node, C-ECHO / C-STORE, the outbox.

:mod:`remote.pacs.node` names the configured node and talks to it; :mod:`remote.pacs.outbox`
keeps what could not be sent on disk and retries it with backoff.
"""
