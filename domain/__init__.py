"""The civic practice network's domain model: aggregates and their events.

Pure Python: no I/O, no web framework, no broker. Aggregates are built with the
``eventsourcing`` library's declarative ``@event`` methods; every state change is
an explicitly declared, past-tense event that carries who did it (``actor``).
"""
