"""``harvester-upgrade-bff doctor``: prove on a live cluster that the installed BFF works.

Small modules, one question each: :mod:`~bff.doctor.crds` (the guarded CRDs lack a
status subresource), :mod:`~bff.doctor.webhook` (the guard is registered, trusted
and really called), :mod:`~bff.doctor.route` (the Ingress reaches the BFF),
:mod:`~bff.doctor.permissions` (the BFF's account may do what ``serve`` does),
:mod:`~bff.doctor.upgrades` (no Upgrade shows the bug's damage). Every request to
the API server passes doctor's own door, :mod:`~bff.doctor.client`: reads, access
reviews and dry-run writes only. :mod:`~bff.doctor.run` ties them together.
"""
