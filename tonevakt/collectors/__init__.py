"""Collectors: fetch, parse and extract. They hand typed records to the pass and never write the database."""
