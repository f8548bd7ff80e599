"""Model architectures (torch modules, imported lazily), the registry and the shipped artefacts."""
