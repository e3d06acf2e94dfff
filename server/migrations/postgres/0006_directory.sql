-- Users from a company directory (LDAP or Active Directory) and imported users: a display name, the
-- directory a user comes from (their password is checked there, by bind; Tessera keeps no copy),
-- and when that directory stopped listing them (their tokens are disabled then).

ALTER TABLE users ADD COLUMN display_name TEXT;
ALTER TABLE users ADD COLUMN directory TEXT;
ALTER TABLE users ADD COLUMN directory_gone_at BIGINT;
