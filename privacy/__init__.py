"""Crypto, consent, retention, data-subject requests and audit."""
