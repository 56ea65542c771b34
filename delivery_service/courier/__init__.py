"""The courier app's backend: the run, offline sync of events, proof of delivery and its files."""
