"""Lead scoring: rules, the points ledger, decay and grades (pure), and how they are
applied (``scoring.service``, via the Store)."""
