"""Live delivery: channels, event encoding, the Redis pub/sub hub, resume/replay, heartbeats."""
