"""Sessions and queues: every stage on one session (``session``), queues of sessions (``queue``)."""
