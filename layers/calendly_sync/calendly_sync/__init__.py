"""Shared package of the Calendly-to-DynamoDB stack, shipped to every function as a Lambda layer.

Tiers: ``envelope`` (Calendly shapes), domain logic (``signature``, ``table_items``, ``deliveries``) and
``adapters`` (one per outside system). Handlers import from here and nothing else of ours.
"""
