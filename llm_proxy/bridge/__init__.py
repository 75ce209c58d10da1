"""The bridge to Alembic: the only package that imports alembic.

- ``config``: an Alembic Config for llm-proxy's Settings, and Settings for a
  stock ``alembic`` run;
- ``scripts``: goose files as in-memory Alembic revisions, joined with the
  Python revisions of ``alembic/versions``;
- ``runner``: what a goose revision does when Alembic runs it;
- ``run``: the one object an llm-proxy command hands to env.py;
- ``env``: what ``alembic/env.py`` does, for both doors;
- ``caller``: a connection the caller passes in ``attributes["connection"]``;
- ``offline``: what an offline (--sql) script begins with;
- ``commands``: Alembic's commands as llm-proxy calls them;
- ``plugin``: the ``alembic.plugins`` entry point for the stock command;
- ``keys``: the names things travel under in a Config's ``attributes``;
- ``alembic_api``: every use of Alembic's private API, in one place.
"""
