"""The cluster guard: an admission webhook that keeps Upgrade status out of clients' reach.

The BFF protects only the requests that pass through it. The API server calls
this webhook for every write to an Upgrade, whichever client sent it.

- :mod:`bff.admission.review`: AdmissionReview ``admission.k8s.io/v1`` in and out (pure);
- :mod:`bff.admission.guard`: who is trusted, what a write changed, the restoring
  JSONPatch (pure);
- :mod:`bff.admission.webhook`: the aiohttp application on its own HTTPS port;
- :mod:`bff.admission.tls`: the server certificate, reloaded when its files change.

Nothing here talks to the API server: an answer is computed from the review alone.
"""
