"""A single-node Backend.AI 23.09 on 127.0.0.1 for trying images before a real cluster sees them.

Backend.AI runs in the sandbox's own virtualenv (pinned by constraints.txt), never in the project's.
"""
