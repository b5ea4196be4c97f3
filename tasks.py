"""Invoke root: one collection per area. `invoke --list` shows them all."""

from invoke import Collection

from common.backendai import tasks as bai_tasks
from common.imagebuild import tasks as images_tasks
from common.results import tasks as results_tasks
from implementations import tasks as impl_tasks
from object_detection import tasks as maskrcnn_tasks
from translation import tasks as gnmt_tasks

ns = Collection()
ns.add_collection(images_tasks.ns, name="images")
ns.add_collection(maskrcnn_tasks.ns, name="maskrcnn")
ns.add_collection(gnmt_tasks.ns, name="gnmt")
ns.add_collection(bai_tasks.ns, name="bai")
ns.add_collection(results_tasks.ns, name="results")
ns.add_collection(impl_tasks.ns, name="impl")
