-- Invite links into a group.

CREATE TABLE group_invites (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    group_id    UUID NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    code        TEXT NOT NULL UNIQUE,
    -- SET NULL: an invite keeps working after its creator leaves, until it expires.
    created_by  UUID REFERENCES users (id) ON DELETE SET NULL,
    max_uses    INTEGER,
    use_count   INTEGER NOT NULL DEFAULT 0,
    expires_at  TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT group_invites_code_format CHECK (code ~ '^[A-Za-z0-9]{6,32}$'),
    CONSTRAINT group_invites_max_uses_positive CHECK (max_uses IS NULL OR max_uses > 0),
    CONSTRAINT group_invites_use_count_bounds
        CHECK (use_count >= 0 AND (max_uses IS NULL OR use_count <= max_uses))
);

CREATE INDEX group_invites_group_id_idx ON group_invites (group_id);
