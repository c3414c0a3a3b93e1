"""Test-suite infrastructure that is not itself a test.

``real_apiserver`` runs a real Kubernetes API server (the upstream
apiextensions-apiserver on etcd) serving the Upgrade CRD; ``authstub`` is the
tiny "core" server it delegates token and access reviews to.
"""
