"""Test-suite infrastructure that is not itself a test.

``real_apiserver`` runs a real kube-apiserver on etcd serving the Upgrade CRD,
with static tokens and real RBAC objects; ``backends`` gives it and the sandbox
emulator one face; ``recorder`` is the recording proxy in front of either.
"""
