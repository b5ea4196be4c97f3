"""Backend.AI's image labels: the rules and profiles, service ports, sizes and image tags they contain, and
their injection into Dockerfiles. Every other area validates labels through this package."""
