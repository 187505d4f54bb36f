-- The instance owner: the first admin, whom other admins cannot demote.

ALTER TABLE users
    ADD COLUMN is_owner BOOLEAN NOT NULL DEFAULT false,
    ADD CONSTRAINT users_owner_is_admin CHECK (NOT is_owner OR role = 'admin');

-- At most one owner per instance.
CREATE UNIQUE INDEX users_single_owner ON users (is_owner) WHERE is_owner;
