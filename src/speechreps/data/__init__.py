"""Data: keys and archives, alignments, features, corpus preparation, datasets and samplers."""
