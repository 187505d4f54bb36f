-- Client settings synced across devices (theme, notification choices, ...).

CREATE TABLE user_preferences (
    user_id      UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    preferences  JSONB NOT NULL DEFAULT '{}'::jsonb,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT user_preferences_object CHECK (jsonb_typeof(preferences) = 'object'),
    -- Preferences are small UI state, not a blob store.
    CONSTRAINT user_preferences_size CHECK (octet_length(preferences::text) <= 65536)
);

CREATE TRIGGER user_preferences_set_updated_at
    BEFORE UPDATE ON user_preferences
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
