"""Outbound webhooks: subscribers are told when a next-best action is decided.

`signing.py` (Standard Webhooks signatures), `backoff.py` and `messages.py` are pure;
`store.py` keeps subscriptions, messages and the delivery log in Redis; `dispatcher.py` turns
`decisions.v1` records into messages and delivers them at least once; `api.py` is the
`/v1/subscriptions` router the recommender service mounts; `cli.py` is `touchpoint webhooks`.
"""
