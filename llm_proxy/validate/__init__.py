"""`migrate validate`: find problems in a goose directory before a database does.

``lint`` (pure: names, parsing, SQL rules over ``sqltokens`` and ``sqlshape``)
and ``roundtrip`` (up, down-to 0 and up again on a scratch database).
"""
