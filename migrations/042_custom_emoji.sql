-- Community emoji. The image is an ordinary (unencrypted, community-visible) file.

CREATE TABLE custom_emoji (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    community_id  UUID NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    -- RESTRICT: the image must not vanish under a live emoji; delete the emoji first.
    file_id       UUID NOT NULL REFERENCES files (id) ON DELETE RESTRICT,
    uploaded_by   UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT custom_emoji_name_key UNIQUE (community_id, name),
    CONSTRAINT custom_emoji_name_format CHECK (name ~ '^[a-z0-9_]{2,32}$')
);

CREATE INDEX custom_emoji_file_id_idx ON custom_emoji (file_id);
CREATE INDEX custom_emoji_uploaded_by_idx ON custom_emoji (uploaded_by);
