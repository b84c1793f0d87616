"""What answers a chat: the backend interface, the in-process engine thread and the scripted test model."""
