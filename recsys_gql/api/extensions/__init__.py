"""Strawberry schema extensions, one cross-cutting concern per module, in the order the schema
runs them: :mod:`.parser_cache`, :mod:`.document_limits`, :mod:`.errors`, :mod:`.arguments`,
:mod:`.query_cost`, :mod:`.throttling`."""
