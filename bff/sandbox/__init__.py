"""The sandbox: a Kubernetes API emulator, a simulated Harvester upgrade controller, and the runner."""
