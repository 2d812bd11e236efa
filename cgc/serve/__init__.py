"""`cgc serve`: a Label Studio ML backend that proposes salient instances while people annotate."""
