"""Marketing and commerce webhooks in: verify the provider's signature, map to touchpoint events.

One module per provider, each pure: `verify(headers, raw_body, url, secret, now)` raises
`SignatureError`; `parse(headers, raw_body)` decodes the body; `to_events(payload, options)`
returns event dicts (or `Unmapped` items with a reason). `router.py` does the I/O.
"""
