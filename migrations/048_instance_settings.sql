-- Instance settings editable from the admin panel (the config file gives the
-- defaults at first start). Values are JSON so each setting keeps its type.

CREATE TABLE instance_settings (
    key         TEXT PRIMARY KEY,
    value       JSONB NOT NULL,
    -- SET NULL: settings stay when the admin who changed them is removed.
    updated_by  UUID REFERENCES users (id) ON DELETE SET NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT instance_settings_key_format CHECK (key ~ '^[a-z][a-z0-9_]{0,63}$')
);

CREATE TRIGGER instance_settings_set_updated_at
    BEFORE UPDATE ON instance_settings
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

INSERT INTO instance_settings (key, value) VALUES
    ('instance_name', '"Chatalot"'),
    ('registration_mode', '"invite_only"'),
    ('max_upload_bytes', '104857600'),
    ('default_upload_quota_bytes', '1073741824')
ON CONFLICT (key) DO NOTHING;
