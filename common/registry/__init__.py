"""Images in a registry without a Docker engine: the v2 client, auth, references and manifests, relabel
planning and copying, and the images.relabel/convert/inspect tasks."""
