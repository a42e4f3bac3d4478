"""Forger's persistence: the job queue, the posts it has seen, replies to send, cursors, the API ledger.

SQLAlchemy 2.0 only: no TensorFlow, no HTTP. Query functions take a ``Session``; the caller owns
the transaction (``with Session(engine) as s, s.begin(): ...``).
"""
