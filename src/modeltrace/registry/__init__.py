"""Local storage of fingerprints, labels and the lineage graph under MODELTRACE_HOME."""
