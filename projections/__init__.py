"""Read models: projections of the event stream into query-friendly tables.

Every projection can be dropped and rebuilt from history; each stores its stream
position in the same transaction as its rows, so it applies each event once.
"""
