"""Talking to a Backend.AI cluster: the client (signed API requests, batch sessions, virtual folders), its errors, image
registration, the bai tasks, and a local sandbox (sandbox/) to try images on."""
