-- Channels and their members.

CREATE TYPE channel_type AS ENUM ('text', 'voice');

CREATE TABLE channels (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name          TEXT NOT NULL,
    channel_type  channel_type NOT NULL DEFAULT 'text',
    topic         TEXT,
    position      INTEGER NOT NULL DEFAULT 0,
    -- SET NULL: a channel belongs to its members, not to whoever created it.
    created_by    UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT channels_name_length CHECK (char_length(name) BETWEEN 1 AND 64),
    CONSTRAINT channels_topic_length CHECK (topic IS NULL OR char_length(topic) <= 1024)
);

CREATE TRIGGER channels_set_updated_at
    BEFORE UPDATE ON channels
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE channel_members (
    channel_id  UUID NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT NOT NULL DEFAULT 'member',
    joined_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, user_id),
    CONSTRAINT channel_members_role CHECK (role IN ('owner', 'admin', 'member'))
);

-- "Which channels am I in": the primary key leads with channel_id.
CREATE INDEX channel_members_user_id_idx ON channel_members (user_id);
