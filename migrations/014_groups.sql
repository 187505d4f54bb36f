-- Groups collect channels. Channels created before groups existed keep
-- group_id NULL, as direct messages always do.

CREATE TABLE groups (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name         TEXT NOT NULL,
    description  TEXT,
    icon_url     TEXT,
    -- RESTRICT: a group must be handed over (or deleted) before its owner's account
    -- can be removed; the account-deletion job does that first.
    owner_id     UUID NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT groups_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
    CONSTRAINT groups_description_length CHECK (description IS NULL OR char_length(description) <= 2048)
);

CREATE INDEX groups_owner_id_idx ON groups (owner_id);

CREATE TRIGGER groups_set_updated_at
    BEFORE UPDATE ON groups
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE group_members (
    group_id   UUID NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL DEFAULT 'member',
    joined_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, user_id),
    CONSTRAINT group_members_role CHECK (role IN ('owner', 'admin', 'member'))
);

CREATE INDEX group_members_user_id_idx ON group_members (user_id);

-- CASCADE: deleting a group deletes its channels (and, through them, their messages).
ALTER TABLE channels ADD COLUMN group_id UUID REFERENCES groups (id) ON DELETE CASCADE;
CREATE INDEX channels_group_position_idx ON channels (group_id, position);
