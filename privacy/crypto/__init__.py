"""The one home of cryptography: a tiny safe API, one opaque error.

Every personal field is sealed with AES-256-GCM-SIV under its lead's data key (DEK),
bound to its table, column and row. DEKs are stored only wrapped (sealed the same way)
by a key-encryption key (KEK) from the master key file, in a key store kept apart from
the data: destroying a DEK makes that lead unreadable in every copy of the data.

- :mod:`~privacy.crypto.primitives`: sealing, key wrapping, MACs and the blind index;
  the only importer of ``cryptography``; :class:`InvalidCiphertext`, the one error for
  every kind of bad ciphertext.
- :mod:`~privacy.crypto.keyring`: the master key file's contents and text format.
- :mod:`~privacy.crypto.keyfile`: reading and writing that file; dev-mode creation;
  :class:`KeyringSource`, which re-reads it after a rotation.
- :mod:`~privacy.crypto.datakeys`: data keys, field sealing, the data-key cache.
"""
