"""Talking to a Backend.AI cluster: the SDK client (batch sessions, virtual folders), its errors, image
registration, the bai tasks, and a local sandbox (sandbox/) to try images on."""
