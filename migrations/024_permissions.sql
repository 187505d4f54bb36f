-- Role-based permissions inside a community. A permission set is a 64-bit mask
-- whose bits the server defines (view channel, send messages, manage roles, ...).

CREATE TABLE community_roles (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    community_id  UUID NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    color         TEXT,
    position      INTEGER NOT NULL DEFAULT 0,
    permissions   BIGINT NOT NULL DEFAULT 0,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT community_roles_name_key UNIQUE (community_id, name),
    CONSTRAINT community_roles_id_community_key UNIQUE (id, community_id),
    CONSTRAINT community_roles_name_length CHECK (char_length(name) BETWEEN 1 AND 64),
    CONSTRAINT community_roles_color_format CHECK (color IS NULL OR color ~ '^#[0-9A-Fa-f]{6}$')
);

CREATE TABLE community_member_roles (
    community_id  UUID NOT NULL,
    user_id       UUID NOT NULL,
    role_id       UUID NOT NULL,
    assigned_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, user_id, role_id),
    -- Both composite keys tie the member and the role to the same community; leaving
    -- the community, or deleting the role, removes the assignment.
    CONSTRAINT community_member_roles_member_fkey FOREIGN KEY (community_id, user_id)
        REFERENCES community_members (community_id, user_id) ON DELETE CASCADE,
    CONSTRAINT community_member_roles_role_fkey FOREIGN KEY (role_id, community_id)
        REFERENCES community_roles (id, community_id) ON DELETE CASCADE
);

CREATE INDEX community_member_roles_role_idx ON community_member_roles (role_id, community_id);

-- Per-channel overrides, for one role or one user (exactly one of the two).
CREATE TABLE channel_permission_overrides (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    channel_id  UUID NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    role_id     UUID REFERENCES community_roles (id) ON DELETE CASCADE,
    user_id     UUID REFERENCES users (id) ON DELETE CASCADE,
    allow_bits  BIGINT NOT NULL DEFAULT 0,
    deny_bits   BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT channel_permission_overrides_one_target CHECK ((role_id IS NULL) <> (user_id IS NULL)),
    CONSTRAINT channel_permission_overrides_disjoint CHECK (allow_bits & deny_bits = 0)
);

-- One override per (channel, role) and per (channel, user): two partial unique
-- indexes rather than UNIQUE NULLS NOT DISTINCT, which needs PostgreSQL 15.
CREATE UNIQUE INDEX channel_permission_overrides_role_key
    ON channel_permission_overrides (channel_id, role_id) WHERE role_id IS NOT NULL;
CREATE UNIQUE INDEX channel_permission_overrides_user_key
    ON channel_permission_overrides (channel_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX channel_permission_overrides_role_id_idx
    ON channel_permission_overrides (role_id) WHERE role_id IS NOT NULL;
CREATE INDEX channel_permission_overrides_user_id_idx
    ON channel_permission_overrides (user_id) WHERE user_id IS NOT NULL;
