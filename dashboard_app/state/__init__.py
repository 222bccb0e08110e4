"""The state that is not metric history, in one SQL database shared by every replica."""
