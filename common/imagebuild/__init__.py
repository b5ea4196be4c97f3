"""Building the benchmark images: the matrix (its data lives in the top-level images/ folder), the build,
the Backend.AI contract checked inside each image, the push, and the images.label/check tasks."""
