"""The schema revisions, oldest first: ``r0001_…`` is the schema as ``create_all`` made it
before migrations existed."""
