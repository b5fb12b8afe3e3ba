"""NLP: records in, annotations and scores out. No network, no database."""
