-- Site limits (tracker/scope.py): an API key or a console user may be limited to some
-- sites, and then sees nothing of the others. NULL: every site; otherwise a JSON array
-- of site ids (never empty).
ALTER TABLE api_keys ADD COLUMN sites TEXT;
ALTER TABLE console_users ADD COLUMN sites TEXT;
