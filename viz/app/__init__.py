"""The front ends: the registry of figure kinds and everything generated from it (CLI, manifests and
`viz build`, the explorer, notebooks). Nothing below (the reference in `viz`, `diagrams/`, `scenes/`)
imports this package."""
