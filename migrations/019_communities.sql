-- Communities sit above groups: community -> groups -> channels. Groups created
-- before communities existed stay standalone (community_id NULL).

CREATE TABLE communities (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name         TEXT NOT NULL,
    description  TEXT,
    icon_url     TEXT,
    -- RESTRICT, as for groups: ownership is transferred before an owner's account goes.
    owner_id     UUID NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT communities_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
    CONSTRAINT communities_description_length
        CHECK (description IS NULL OR char_length(description) <= 2048)
);

CREATE INDEX communities_owner_id_idx ON communities (owner_id);

CREATE TRIGGER communities_set_updated_at
    BEFORE UPDATE ON communities
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE community_members (
    community_id  UUID NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    user_id       UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          TEXT NOT NULL DEFAULT 'member',
    nickname      TEXT,
    joined_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, user_id),
    CONSTRAINT community_members_role CHECK (role IN ('owner', 'admin', 'moderator', 'member')),
    CONSTRAINT community_members_nickname_length
        CHECK (nickname IS NULL OR char_length(nickname) BETWEEN 1 AND 64)
);

-- CASCADE: deleting a community deletes its groups, and through them their channels.
ALTER TABLE groups ADD COLUMN community_id UUID REFERENCES communities (id) ON DELETE CASCADE;
CREATE INDEX groups_community_id_idx ON groups (community_id);
