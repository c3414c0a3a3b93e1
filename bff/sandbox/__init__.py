"""The sandbox: a Kubernetes API emulator, a simulated Harvester controller and a runner."""
