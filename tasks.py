"""Invoke root: one collection per area. `invoke --list` shows them all."""

from invoke import Collection

from common import images_tasks

ns = Collection()
ns.add_collection(images_tasks.ns, name="images")
